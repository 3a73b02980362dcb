-- Students matched on all but one property (the paper's student-property comparison): each
-- student with ok single-teacher runs beside its nearest match (the closest parameter count) in
-- each way it can differ: `weights` (same family, parameters within 1%: the same architecture
-- trained on other data or with another recipe; b the more accurate), `size` (same family, b the
-- smallest with at least 1.5 times a's parameters) and `family` (for each family after a's in
-- name order, the student b of at most 1.5 times the parameters, either way, closest in size).
-- Per method and pair, over the teachers both students ran with (mean over seeds): each
-- student's mean final dist_delta and mean_diff = b - a. Nearest matches only, so a zoo of M
-- students gives at most a few M pairs; matched_students_by_property sums them up, and how
-- delta correlates with each property over all runs is the correlations table.
WITH students AS (
    SELECT DISTINCT r.dataset, r.student, m.family, m.params_m, m.top1
    FROM single_runs r
    JOIN models m ON m.model = r.student AND m.dataset = r.dataset
    WHERE r.status = 'ok' AND m.params_m > 0
),
candidates AS (
    SELECT a.dataset, a.student AS student_a, b.student AS student_b,
           a.family AS family_a, b.family AS family_b, a.params_m AS params_a,
           b.params_m AS params_b, a.top1 AS acc_a, b.top1 AS acc_b,
           CASE WHEN a.family <> b.family THEN 'family'
                WHEN greatest(a.params_m, b.params_m) <= 1.01 * least(a.params_m, b.params_m)
                    THEN 'weights'
                ELSE 'size' END AS property
    FROM students a
    JOIN students b ON a.dataset = b.dataset AND a.student <> b.student
    WHERE (a.family = b.family
           AND greatest(a.params_m, b.params_m) <= 1.01 * least(a.params_m, b.params_m)
           AND (a.top1, a.student) < (b.top1, b.student))
       OR (a.family = b.family AND b.params_m >= 1.5 * a.params_m)
       OR (a.family < b.family
           AND greatest(a.params_m, b.params_m) <= 1.5 * least(a.params_m, b.params_m))
),
pairs AS (
    SELECT * FROM candidates
    QUALIFY row_number() OVER (
        PARTITION BY dataset, student_a, property, family_b
        ORDER BY abs(ln(params_b / params_a)), acc_b DESC, student_b) = 1
),
per_teacher AS (
    SELECT dataset, method, student, teacher, avg(dist_delta) AS delta
    FROM single_runs
    WHERE status = 'ok' AND dist_delta IS NOT NULL
    GROUP BY dataset, method, student, teacher
)
SELECT p.dataset, x.method, p.property, p.student_a, p.student_b,
       p.family_a, p.family_b, p.params_a, p.params_b,
       round(p.acc_a, 2) AS acc_a, round(p.acc_b, 2) AS acc_b,
       count(*) AS teachers,
       round(avg(x.delta), 2) AS delta_a,
       round(avg(y.delta), 2) AS delta_b,
       round(avg(y.delta - x.delta), 2) AS mean_diff
FROM pairs p
JOIN per_teacher x ON x.dataset = p.dataset AND x.student = p.student_a
JOIN per_teacher y ON y.dataset = p.dataset AND y.student = p.student_b
    AND y.method = x.method AND y.teacher = x.teacher
GROUP BY p.dataset, x.method, p.property, p.student_a, p.student_b, p.family_a, p.family_b,
         p.params_a, p.params_b, p.acc_a, p.acc_b
ORDER BY p.dataset, x.method, p.property, p.student_a, p.student_b;
