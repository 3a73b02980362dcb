-- Success rate per method (docs/definitions.md#transfer-metrics): per student, the share of its runs with final
-- dist_delta > 0; then the median, mean and interquartile range over students (linear
-- interpolation, as numpy), and mean_delta, the mean over students of each student's mean final
-- dist_delta over its ok runs. Diverged runs count as unsuccessful; failed runs have no result
-- and are left out of the shares; both are counted in their own columns. 95% bootstrap
-- intervals (_lo, _hi) resample students (docs/analysis.md#intervals).
WITH per_student AS (
    SELECT dataset, method, student,
           count(*) FILTER (WHERE status IN ('ok', 'diverged')) AS runs,
           100.0 * count(*) FILTER (WHERE status = 'ok' AND dist_delta > 0)
                 / nullif(count(*) FILTER (WHERE status IN ('ok', 'diverged')), 0) AS success,
           avg(dist_delta) FILTER (WHERE status = 'ok') AS mean_delta,
           count(*) FILTER (WHERE status = 'diverged') AS diverged,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM single_runs
    GROUP BY dataset, method, student
)
SELECT dataset, method,
       count(success) AS students,
       CAST(sum(runs) AS BIGINT) AS runs,
       round(median(success), 1) AS median_success,
       round(avg(success), 1) AS mean_success,
       round(quantile_cont(success, 0.25), 1) AS q25_success,
       round(quantile_cont(success, 0.75), 1) AS q75_success,
       round(quantile_cont(success, 0.75) - quantile_cont(success, 0.25), 1) AS iqr_success,
       round(avg(mean_delta), 2) AS mean_delta,
       CAST(sum(diverged) AS BIGINT) AS diverged,
       CAST(sum(failed) AS BIGINT) AS failed,
       list(success ORDER BY student) FILTER (WHERE success IS NOT NULL) AS boot_success,
       list(mean_delta ORDER BY student) FILTER (WHERE mean_delta IS NOT NULL) AS boot_delta
FROM per_student
GROUP BY dataset, method
ORDER BY dataset, median_success DESC NULLS LAST, method;
