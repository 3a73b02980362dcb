-- Knowledge gain against knowledge loss (docs/definitions.md#transfer-metrics) per method and
-- student family: per student the mean over its ok single-teacher runs of the final
-- knowledge_gain (% of eval samples wrong before transfer and right after) and knowledge_loss
-- (right before, wrong after), then the mean over the family's students and over all of them
-- (family "all"), as the authors' results file averages them; mean_net = gain - loss. The paper
-- sets KL beside KL + DP: plain KL loses more than it gains, DP keeps the loss below the gain.
-- 95% bootstrap intervals resample students.
WITH per_student AS (
    SELECT r.dataset, r.method, coalesce(m.family, '?') AS family, r.student,
           count(*) AS runs,
           avg(r.knowledge_gain) AS gain,
           avg(r.knowledge_loss) AS loss
    FROM single_runs r
    LEFT JOIN models m ON m.model = r.student AND m.dataset = r.dataset
    WHERE r.status = 'ok' AND r.knowledge_gain IS NOT NULL AND r.knowledge_loss IS NOT NULL
    GROUP BY r.dataset, r.method, coalesce(m.family, '?'), r.student
)
SELECT dataset, method,
       CASE WHEN grouping(family) = 1 THEN 'all' ELSE family END AS family,
       count(*) AS students,
       CAST(sum(runs) AS BIGINT) AS runs,
       round(avg(gain), 2) AS mean_gain,
       round(avg(loss), 2) AS mean_loss,
       round(avg(gain - loss), 2) AS mean_net,
       list(gain ORDER BY student) AS boot_gain,
       list(loss ORDER BY student) AS boot_loss,
       list(gain - loss ORDER BY student) AS boot_net
FROM per_student
GROUP BY GROUPING SETS ((dataset, method), (dataset, method, family))
ORDER BY dataset, method, grouping(family) DESC, family;
