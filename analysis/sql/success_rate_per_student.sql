-- Success per student (docs/definitions.md#transfer-metrics): the share of a student's transfer runs whose final
-- dist_delta > 0 (one run per teacher, or per teacher and seed). A diverged run counts as
-- unsuccessful; a failed run has no result and is left out of the share (counted in `failed`).
-- Single-teacher runs only; a compat mode is part of the method's label.
SELECT dataset, method, student,
       count(*) FILTER (WHERE status IN ('ok', 'diverged')) AS runs,
       count(*) FILTER (WHERE status = 'ok' AND dist_delta > 0) AS successes,
       round(100.0 * count(*) FILTER (WHERE status = 'ok' AND dist_delta > 0)
             / nullif(count(*) FILTER (WHERE status IN ('ok', 'diverged')), 0), 1) AS success,
       count(*) FILTER (WHERE status = 'diverged') AS diverged,
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM single_runs
GROUP BY dataset, method, student
ORDER BY dataset, method, student;
