-- rho_pos and rho_neg by teacher-minus-student accuracy (ts_diff, points), in the fixed bins of
-- the transfer tables plus open ends: complementary knowledge exists even for much weaker teachers.
-- Pairs of the random-init baseline (`<model>@random`) are left out.
WITH pairs AS (
    SELECT * FROM pair_stats
    WHERE NOT ends_with(teacher, '@random') AND NOT ends_with(student, '@random')
    QUALIFY row_number() OVER (PARTITION BY teacher, student, dataset ORDER BY compat) = 1
),
binned AS (
    SELECT *, CASE WHEN ts_diff < -15 THEN 1
                   WHEN ts_diff <= -3 THEN 2
                   WHEN ts_diff <= -1 THEN 3
                   WHEN ts_diff <= 1 THEN 4
                   WHEN ts_diff <= 3 THEN 5
                   WHEN ts_diff <= 15 THEN 6
                   ELSE 7 END AS bin_order
    FROM pairs
)
SELECT dataset,
       ['< -15', '[-15, -3]', '(-3, -1]', '(-1, 1]', '(1, 3]', '(3, 15]', '> 15'][bin_order]
           AS ts_diff_bin,
       count(*) AS pairs,
       round(min(pos_flips), 2) AS min_rho_pos,
       round(avg(pos_flips), 2) AS mean_rho_pos,
       round(max(pos_flips), 2) AS max_rho_pos,
       round(min(neg_flips), 2) AS min_rho_neg,
       round(avg(neg_flips), 2) AS mean_rho_neg,
       round(max(neg_flips), 2) AS max_rho_neg
FROM binned
GROUP BY dataset, bin_order
ORDER BY dataset, bin_order;
