-- Students matched on all but one property (the paper's student-property comparison): pairs of
-- students with ok single-teacher runs that differ in `weights` (same family, parameter counts
-- within 1%: the same architecture trained on other data or with another recipe), `size` (same
-- family, the larger at least 1.5 times the parameters) or `family` (different families, the
-- larger at most 1.5 times the parameters). Student b is the one with more parameters, then the
-- more accurate. Per method and pair, over the teachers both students ran with (mean over
-- seeds): each student's mean final dist_delta and mean_diff = b - a, with a 95% bootstrap
-- interval resampling those teachers. Pairs that fit none of the three are left out; how delta
-- correlates with each property over all runs is the correlations table.
WITH students AS (
    SELECT DISTINCT r.dataset, r.student, m.family, m.params_m, m.top1
    FROM single_runs r
    JOIN models m ON m.model = r.student AND m.dataset = r.dataset
    WHERE r.status = 'ok' AND m.params_m > 0
),
pairs AS (
    SELECT a.dataset, a.student AS student_a, b.student AS student_b,
           a.family AS family_a, b.family AS family_b, a.params_m AS params_a,
           b.params_m AS params_b, a.top1 AS acc_a, b.top1 AS acc_b,
           CASE WHEN a.family <> b.family THEN 'family'
                WHEN b.params_m <= 1.01 * a.params_m THEN 'weights'
                ELSE 'size' END AS property
    FROM students a
    JOIN students b ON a.dataset = b.dataset
        AND (a.params_m, a.top1, a.student) < (b.params_m, b.top1, b.student)
    WHERE (a.family = b.family AND (b.params_m <= 1.01 * a.params_m
                                    OR b.params_m >= 1.5 * a.params_m))
       OR (a.family <> b.family AND b.params_m <= 1.5 * a.params_m)
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
       round(avg(y.delta - x.delta), 2) AS mean_diff,
       list(y.delta - x.delta ORDER BY x.teacher) AS boot_diff
FROM pairs p
JOIN per_teacher x ON x.dataset = p.dataset AND x.student = p.student_a
JOIN per_teacher y ON y.dataset = p.dataset AND y.student = p.student_b
    AND y.method = x.method AND y.teacher = x.teacher
GROUP BY ALL
ORDER BY p.dataset, x.method, p.property, p.student_a, p.student_b;
