-- Each multi-teacher run against its own teachers alone (docs/methods.md#multi-teacher): for
-- every multi-teacher run, its final dist_delta beside the single-teacher runs of the same
-- student and method with each of its teachers (ok runs, mean over seeds): how many of its
-- teachers have one, the best of them and its delta, and gain_over_best = the run's delta minus
-- the best teacher's (above 0: the teachers together beat the best one alone). The paper's
-- question: do several teachers give more than the best single one?
WITH single AS (
    SELECT dataset, student, method, teacher, avg(dist_delta) AS delta
    FROM single_runs
    WHERE status = 'ok' AND dist_delta IS NOT NULL
    GROUP BY dataset, student, method, teacher
),
members AS (
    SELECT key, trim(unnest(string_split(teachers, ','))) AS member
    FROM runs
    WHERE NOT single_teacher
),
best AS (
    SELECT m.key, count(s.delta) AS teachers_alone,
           arg_max(s.teacher, s.delta) AS best_teacher, max(s.delta) AS best_teacher_delta
    FROM members m
    JOIN runs r USING (key)
    LEFT JOIN single s ON s.dataset = r.dataset AND s.student = r.student
        AND s.method = r.method AND s.teacher = m.member
    GROUP BY m.key
)
SELECT r.dataset, r.student, r.mode, r.teachers, r.method, r.seed, r.status,
       round(r.dist_delta, 2) AS dist_delta,
       b.teachers_alone, b.best_teacher,
       round(b.best_teacher_delta, 2) AS best_teacher_delta,
       round(r.dist_delta - b.best_teacher_delta, 2) AS gain_over_best
FROM runs r
JOIN best b USING (key)
ORDER BY r.dataset, r.student, r.mode, r.method, r.teachers, r.seed;
