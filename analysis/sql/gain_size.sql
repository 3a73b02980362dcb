-- How large the gains are (the paper's full-ImageNet table: gains often under one point): per
-- method, each student's mean final dist_delta over its ok single-teacher runs; the students, the
-- median and largest of those means, the students that gain on average (mean above 0) and how
-- many of them gain under 1 point, as a share (under_1_pct). 95% bootstrap interval of the share:
-- resampling students.
WITH per_student AS (
    SELECT dataset, method, student, avg(dist_delta) AS delta
    FROM single_runs
    WHERE status = 'ok' AND dist_delta IS NOT NULL
    GROUP BY dataset, method, student
)
SELECT dataset, method,
       count(*) AS students,
       round(median(delta), 2) AS median_delta,
       round(max(delta), 2) AS max_delta,
       count(*) FILTER (WHERE delta > 0) AS gaining,
       count(*) FILTER (WHERE delta > 0 AND delta < 1) AS gaining_under_1,
       round(100.0 * count(*) FILTER (WHERE delta > 0 AND delta < 1)
             / nullif(count(*) FILTER (WHERE delta > 0), 0), 1) AS under_1_pct,
       list(CASE WHEN delta > 0 AND delta < 1 THEN 1 ELSE 0 END ORDER BY student) AS boot_under_1,
       list(CASE WHEN delta > 0 THEN 1 ELSE 0 END ORDER BY student) AS boot_gaining
FROM per_student
GROUP BY dataset, method
ORDER BY dataset, method;
