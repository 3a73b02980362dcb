-- Success rate per method and student family (docs/analysis.md#paper-numbers: per-architecture median success):
-- as success_rate, with students grouped by their family in `models`; 95% bootstrap intervals
-- resample the family's students.
WITH per_student AS (
    SELECT dataset, method, student,
           count(*) FILTER (WHERE status IN ('ok', 'diverged')) AS runs,
           100.0 * count(*) FILTER (WHERE status = 'ok' AND dist_delta > 0)
                 / nullif(count(*) FILTER (WHERE status IN ('ok', 'diverged')), 0) AS success,
           count(*) FILTER (WHERE status = 'diverged') AS diverged,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM single_runs
    GROUP BY dataset, method, student
)
SELECT p.dataset, p.method, coalesce(m.family, '?') AS family,
       count(p.success) AS students,
       CAST(sum(p.runs) AS BIGINT) AS runs,
       round(median(p.success), 1) AS median_success,
       round(avg(p.success), 1) AS mean_success,
       round(quantile_cont(p.success, 0.25), 1) AS q25_success,
       round(quantile_cont(p.success, 0.75), 1) AS q75_success,
       CAST(sum(p.diverged) AS BIGINT) AS diverged,
       CAST(sum(p.failed) AS BIGINT) AS failed,
       list(p.success ORDER BY p.student) FILTER (WHERE p.success IS NOT NULL) AS boot_success
FROM per_student p
LEFT JOIN models m ON m.model = p.student AND m.dataset = p.dataset
GROUP BY p.dataset, p.method, coalesce(m.family, '?')
ORDER BY p.dataset, p.method, family;
