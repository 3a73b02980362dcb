-- Transfer per dataset (the shape of the paper's table over datasets): per dataset and method,
-- the mean over students of each student's success rate (share of runs with final
-- dist_delta > 0; diverged runs count as unsuccessful) and of its mean final dist_delta over
-- its ok runs, beside the mean top-1 of the dataset's models (their linear probes' on a probed
-- dataset, docs/protocol.md#probes; probe_recipes names how those were fitted). 95% bootstrap
-- intervals (_lo, _hi) resample students (docs/analysis.md#intervals).
WITH per_student AS (
    SELECT dataset, method, student,
           count(*) FILTER (WHERE status IN ('ok', 'diverged')) AS runs,
           100.0 * count(*) FILTER (WHERE status = 'ok' AND dist_delta > 0)
                 / nullif(count(*) FILTER (WHERE status IN ('ok', 'diverged')), 0) AS success,
           avg(dist_delta) FILTER (WHERE status = 'ok') AS mean_delta
    FROM single_runs
    GROUP BY dataset, method, student
), accuracy AS (
    SELECT dataset, avg(top1) AS model_top1 FROM models GROUP BY dataset
), probed AS (
    SELECT dataset, string_agg(DISTINCT recipe, ',' ORDER BY recipe) AS probe_recipes
    FROM probes GROUP BY dataset
)
SELECT s.dataset, s.method,
       count(success) AS students,
       CAST(sum(runs) AS BIGINT) AS runs,
       round(avg(success), 1) AS mean_success,
       round(avg(mean_delta), 2) AS mean_delta,
       round(any_value(a.model_top1), 2) AS model_top1,
       any_value(p.probe_recipes) AS probe_recipes,
       list(success ORDER BY student) FILTER (WHERE success IS NOT NULL) AS boot_success,
       list(mean_delta ORDER BY student) FILTER (WHERE mean_delta IS NOT NULL) AS boot_delta
FROM per_student s
LEFT JOIN accuracy a USING (dataset)
LEFT JOIN probed p USING (dataset)
GROUP BY s.dataset, s.method
ORDER BY s.method, s.dataset;
