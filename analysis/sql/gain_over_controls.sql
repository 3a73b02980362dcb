-- What a method gains beyond each control run beside it (docs/analysis.md#gain-over-controls): for
-- every pair and seed where the method and a control (random_teacher, self_distill, xe_finetune)
-- both ran ok, on the same dataset and compat mode, the method's final dist_delta minus the
-- control's; per pair the mean of these over its seeds. Then per method and control: matched
-- pairs and runs, pairs where the method gained more (wins), less (losses) or the same (ties), and
-- the mean and median paired gain. ktbench tables adds a 95% bootstrap interval of the mean
-- (resampling pairs) and two-sided paired tests over the pairs: the sign test and Wilcoxon's
-- signed-rank test, with a verdict at p < 0.05.
WITH ok AS (
    SELECT dataset, teacher, student, seed, coalesce(compat, '') AS compat, base_method, method,
           dist_delta
    FROM single_runs
    WHERE status = 'ok' AND dist_delta IS NOT NULL
),
matched AS (
    SELECT m.dataset, m.method, c.method AS control, m.teacher, m.student,
           avg(m.dist_delta - c.dist_delta) AS gain, count(*) AS runs
    FROM ok m
    JOIN ok c USING (dataset, teacher, student, seed, compat)
    WHERE m.base_method NOT IN ('random_teacher', 'self_distill', 'xe_finetune')
      AND c.base_method IN ('random_teacher', 'self_distill', 'xe_finetune')
    GROUP BY m.dataset, m.method, c.method, m.teacher, m.student
)
SELECT dataset, method, control,
       count(*) AS pairs,
       CAST(sum(runs) AS BIGINT) AS matched_runs,
       round(avg(gain), 2) AS mean_gain,
       round(median(gain), 2) AS median_gain,
       list(gain ORDER BY teacher, student) AS boot_gain
FROM matched
GROUP BY dataset, method, control
ORDER BY dataset, method, control;
