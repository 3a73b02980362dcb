-- Final dist_delta by teacher-minus-student accuracy (ts_diff, points) in the paper's fixed bins
-- [-15, -3], (-3, -1], (-1, 1], (1, 3], (3, 15] (docs/definitions.md#transfer-metrics, `transfer_delta_table`), with
-- mean +- std (population std, as np.std) over ok runs. Runs outside [-15, 15] get their own rows
-- instead of being dropped; diverged and failed runs are counted per bin, never averaged. 95%
-- bootstrap interval of mean_delta: resampling the bin's pairs.
WITH binned AS (
    SELECT dataset, method, teacher, student, status, dist_delta,
           CASE WHEN ts_diff IS NULL THEN 8
                WHEN ts_diff < -15 THEN 1
                WHEN ts_diff <= -3 THEN 2
                WHEN ts_diff <= -1 THEN 3
                WHEN ts_diff <= 1 THEN 4
                WHEN ts_diff <= 3 THEN 5
                WHEN ts_diff <= 15 THEN 6
                ELSE 7 END AS bin_order
    FROM single_runs
),
pairs AS (
    SELECT dataset, method, bin_order,
           list(delta_sum ORDER BY teacher, student) FILTER (WHERE ok_runs > 0) AS boot_delta_sum,
           list(ok_runs ORDER BY teacher, student) FILTER (WHERE ok_runs > 0) AS boot_delta_runs
    FROM (SELECT dataset, method, bin_order, teacher, student,
                 sum(dist_delta) FILTER (WHERE status = 'ok') AS delta_sum,
                 count(*) FILTER (WHERE status = 'ok') AS ok_runs
          FROM binned GROUP BY ALL)
    GROUP BY dataset, method, bin_order
),
bins AS (
    SELECT dataset, method, bin_order,
           count(*) FILTER (WHERE status = 'ok') AS runs,
           round(avg(dist_delta) FILTER (WHERE status = 'ok'), 2) AS mean_delta,
           round(stddev_pop(dist_delta) FILTER (WHERE status = 'ok'), 2) AS std_delta,
           count(*) FILTER (WHERE status = 'diverged') AS diverged,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM binned
    GROUP BY dataset, method, bin_order
)
-- the bins' resampling lists join the bins, not their runs: a list as long as a bin's pairs on
-- each of its runs would be quadratic in memory
SELECT dataset, method,
       ['< -15', '[-15, -3]', '(-3, -1]', '(-1, 1]', '(1, 3]', '(3, 15]', '> 15', 'unknown'][bin_order]
           AS ts_diff_bin,
       runs, mean_delta, std_delta, diverged, failed, p.boot_delta_sum, p.boot_delta_runs
FROM bins
LEFT JOIN pairs p USING (dataset, method, bin_order)
ORDER BY dataset, method, bin_order;
