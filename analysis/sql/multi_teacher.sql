-- Multi-teacher transfer (docs/methods.md#multi-teacher): each run with several teachers (transfer_runs.mode:
-- sequential, parallel or soup; teachers: the list), its final dist_delta, gain and loss, beside
-- the best and the mean final dist_delta of the same student and method over its single-teacher
-- ok runs. Empty until the results hold multi-teacher runs (before the `mode` and `teachers`
-- columns exist, too).
WITH single AS (
    SELECT dataset, student, method,
           max(dist_delta) AS best_single, avg(dist_delta) AS mean_single
    FROM single_runs
    WHERE status = 'ok'
    GROUP BY dataset, student, method
)
SELECT m.dataset, m.student, m.mode, m.teachers, m.method, m.seed, m.status,
       round(m.dist_delta, 2) AS dist_delta,
       round(m.knowledge_gain, 2) AS knowledge_gain,
       round(m.knowledge_loss, 2) AS knowledge_loss,
       round(s.best_single, 2) AS best_single_teacher_delta,
       round(s.mean_single, 2) AS mean_single_teacher_delta
FROM runs m
LEFT JOIN single s USING (dataset, student, method)
WHERE NOT m.single_teacher
ORDER BY m.dataset, m.student, mode, m.method, teachers, m.seed;
