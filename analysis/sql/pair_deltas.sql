-- Per pair: accuracy gap, complementary knowledge, and each method's final transfer delta.
-- A diverged run shows its delta with a trailing '!' ; a failed run shows 'failed'.
PIVOT (
    SELECT r.teacher, r.student, round(r.ts_diff, 2) AS ts_diff,
           round(p.pos_flips, 2) AS rho_pos, r.method,
           CASE r.status
               WHEN 'ok' THEN printf('%+.2f', r.dist_delta)
               WHEN 'diverged' THEN printf('%+.2f!', r.dist_delta)
               ELSE r.status
           END AS delta
    FROM transfer_runs r
    LEFT JOIN pair_stats p
      ON p.teacher = r.teacher AND p.student = r.student AND p.dataset = r.dataset
     AND p.compat = r.compat
)
ON method USING first(delta)
ORDER BY student, ts_diff;
