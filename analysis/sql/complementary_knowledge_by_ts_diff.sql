-- rho_pos by teacher-student accuracy difference, in the paper's fixed bins plus open ends.
SELECT CASE
         WHEN ts_diff <= -15 THEN '1: <= -15'
         WHEN ts_diff <= -3 THEN '2: (-15, -3]'
         WHEN ts_diff <= -1 THEN '3: (-3, -1]'
         WHEN ts_diff <= 1 THEN '4: (-1, 1]'
         WHEN ts_diff <= 3 THEN '5: (1, 3]'
         WHEN ts_diff <= 15 THEN '6: (3, 15]'
         ELSE '7: > 15'
       END AS ts_diff_bin,
       count(*) AS pairs,
       round(min(pos_flips), 2) AS min_rho_pos,
       round(avg(pos_flips), 2) AS mean_rho_pos,
       round(max(pos_flips), 2) AS max_rho_pos,
       round(avg(neg_flips), 2) AS mean_rho_neg
FROM pair_stats
WHERE compat = ''
GROUP BY ts_diff_bin
ORDER BY ts_diff_bin;
