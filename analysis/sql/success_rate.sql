-- Success rate per method (paper.md 1.3): per student, the share of its teachers with
-- dist_delta > 0; then median and mean over students. Diverged runs count as unsuccessful and
-- are counted in their own column; failed runs have no delta and are left out (see `runs`).
WITH per_student AS (
    SELECT method, student,
           100.0 * avg(CASE WHEN dist_delta > 0 THEN 1 ELSE 0 END) AS success,
           count(*) AS teachers,
           count(*) FILTER (WHERE status = 'diverged') AS diverged
    FROM transfer_runs
    WHERE status IN ('ok', 'diverged')
    GROUP BY method, student
)
SELECT method,
       count(*) AS students,
       sum(teachers) AS runs,
       round(median(success), 1) AS median_success,
       round(avg(success), 1) AS mean_success,
       sum(diverged) AS diverged
FROM per_student
GROUP BY method
ORDER BY median_success DESC, method;
