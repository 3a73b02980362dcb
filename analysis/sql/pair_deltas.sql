-- Per pair: the accuracy gap, the complementary knowledge, each method's final dist_delta and, as
-- "(ensemble oracle)", the confidence ensemble's gain without training. A diverged run shows its
-- delta with a trailing '!'; a failed run shows 'failed'. `seeds`: the training seeds the pair
-- ran; with several, a cell is the mean +- the sample std across its ok seeds (the seed-to-seed
-- spread); with one, a single run's delta, training noise unmeasured.
WITH pairs AS (
    SELECT dataset, teacher, student, round(avg(ts_diff), 2) AS ts_diff,
           count(DISTINCT seed) AS seeds
    FROM single_runs GROUP BY dataset, teacher, student
),
stats AS (SELECT * FROM pair_stats QUALIFY row_number() OVER
          (PARTITION BY teacher, student, dataset ORDER BY compat) = 1),
cells AS (
    SELECT dataset, teacher, student, method,
           CASE WHEN count(*) FILTER (WHERE status = 'ok') > 1
                THEN printf('%+.2f ± %.2f', avg(dist_delta) FILTER (WHERE status = 'ok'),
                            stddev_samp(dist_delta) FILTER (WHERE status = 'ok'))
                WHEN count(*) FILTER (WHERE status = 'ok') > 0
                THEN printf('%+.2f', avg(dist_delta) FILTER (WHERE status = 'ok'))
                WHEN count(*) FILTER (WHERE status = 'diverged') > 0
                THEN printf('%+.2f!', avg(dist_delta) FILTER (WHERE status = 'diverged'))
                ELSE 'failed' END AS delta
    FROM single_runs GROUP BY dataset, teacher, student, method
    UNION ALL
    SELECT q.dataset, q.teacher, q.student, '(ensemble oracle)',
           printf('%+.2f', p.ensemble_acc - p.acc_s)
    FROM pairs q
    JOIN stats p USING (dataset, teacher, student)
    WHERE p.ensemble_acc IS NOT NULL
)
PIVOT (
    SELECT c.dataset, c.teacher, c.student, q.ts_diff, round(p.pos_flips, 2) AS rho_pos, q.seeds,
           c.method, c.delta
    FROM cells c
    JOIN pairs q USING (dataset, teacher, student)
    LEFT JOIN stats p USING (dataset, teacher, student)
)
ON method USING first(delta)
GROUP BY dataset, teacher, student, ts_diff, rho_pos, seeds
ORDER BY dataset, student, ts_diff, teacher;
