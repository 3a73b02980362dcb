-- Each method beside the control arms and the ensemble oracle: a method's gain counts only where it
-- beats training the student without the teacher's knowledge. Controls: random_teacher (a randomly
-- initialised teacher), self_distill (the frozen initial student as target), xe_finetune (plain
-- cross-entropy fine-tuning, same budget). Oracle: the confidence ensemble of teacher and student,
-- no training (pair_stats.ensemble_acc - acc_s), over the pairs of the ok runs. Final dist_delta
-- over ok runs (population std); success = share of ok and diverged runs with dist_delta > 0;
-- seeds = the most training seeds any pair ran. 95% bootstrap intervals: mean_delta resamples
-- pairs, success resamples students. `beyond_controls`: the method's paired gain over each
-- control run beside it (table gain_over_controls).
WITH per_pair AS (
    SELECT dataset, method, teacher, student,
           sum(dist_delta) FILTER (WHERE status = 'ok') AS delta_sum,
           count(*) FILTER (WHERE status = 'ok') AS ok_runs,
           count(DISTINCT seed) AS seeds
    FROM single_runs
    GROUP BY dataset, method, teacher, student
),
per_student AS (
    SELECT dataset, method, student,
           count(*) FILTER (WHERE status = 'ok' AND dist_delta > 0) AS successes,
           count(*) FILTER (WHERE status IN ('ok', 'diverged')) AS finished
    FROM single_runs
    GROUP BY dataset, method, student
),
-- resampling lists are joined to one row per arm, never to each pair or run (a list per
-- row would be quadratic in memory)
units AS (
    SELECT * FROM
        (SELECT dataset, method, count(*) FILTER (WHERE ok_runs > 0) AS pairs,
                max(seeds) AS seeds,
                list(delta_sum ORDER BY teacher, student) FILTER (WHERE ok_runs > 0)
                    AS boot_delta_sum,
                list(ok_runs ORDER BY teacher, student) FILTER (WHERE ok_runs > 0)
                    AS boot_delta_runs
         FROM per_pair GROUP BY dataset, method)
    JOIN (SELECT dataset, method,
                 list(successes ORDER BY student) FILTER (WHERE finished > 0) AS boot_successes,
                 list(finished ORDER BY student) FILTER (WHERE finished > 0) AS boot_finished
          FROM per_student GROUP BY dataset, method) USING (dataset, method)
),
arms AS (
    SELECT dataset, method,
           CASE WHEN any_value(base_method) IN ('random_teacher', 'self_distill', 'xe_finetune')
                THEN 'control' ELSE 'method' END AS kind,
           count(*) FILTER (WHERE status = 'ok') AS runs,
           count(DISTINCT student) FILTER (WHERE status = 'ok') AS students,
           avg(dist_delta) FILTER (WHERE status = 'ok') AS mean_delta,
           stddev_pop(dist_delta) FILTER (WHERE status = 'ok') AS std_delta,
           median(dist_delta) FILTER (WHERE status = 'ok') AS median_delta,
           100.0 * count(*) FILTER (WHERE status = 'ok' AND dist_delta > 0)
                 / nullif(count(*) FILTER (WHERE status IN ('ok', 'diverged')), 0) AS success,
           count(*) FILTER (WHERE status = 'diverged') AS diverged,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM single_runs
    GROUP BY dataset, method
),
oracle_pairs AS (
    SELECT p.dataset, p.teacher, p.student, p.ensemble_acc - p.acc_s AS delta
    FROM (SELECT * FROM pair_stats QUALIFY row_number() OVER
          (PARTITION BY teacher, student, dataset ORDER BY compat) = 1) p
    SEMI JOIN (SELECT dataset, teacher, student FROM single_runs WHERE status = 'ok') r
        ON r.dataset = p.dataset AND r.teacher = p.teacher AND r.student = p.student
    WHERE p.ensemble_acc IS NOT NULL
),
oracle_students AS (
    SELECT dataset, student, count(*) FILTER (WHERE delta > 0) AS successes, count(*) AS finished
    FROM oracle_pairs GROUP BY dataset, student
),
oracle AS (
    SELECT * FROM
        (SELECT dataset, '(ensemble oracle)' AS method, 'oracle' AS kind,
                count(*) AS runs, count(DISTINCT student) AS students,
                avg(delta) AS mean_delta, stddev_pop(delta) AS std_delta,
                median(delta) AS median_delta,
                100.0 * avg(CASE WHEN delta > 0 THEN 1 ELSE 0 END) AS success,
                0 AS diverged, 0 AS failed, count(*) AS pairs, NULL::BIGINT AS seeds,
                list(delta ORDER BY teacher, student) AS boot_delta_sum,
                list(1 ORDER BY teacher, student) AS boot_delta_runs
         FROM oracle_pairs GROUP BY dataset)
    JOIN (SELECT dataset, list(successes ORDER BY student) AS boot_successes,
                 list(finished ORDER BY student) AS boot_finished
          FROM oracle_students GROUP BY dataset) USING (dataset)
)
SELECT dataset, method, kind, runs, pairs, students, seeds,
       round(mean_delta, 2) AS mean_delta, round(std_delta, 2) AS std_delta,
       round(median_delta, 2) AS median_delta, round(success, 1) AS success,
       diverged, failed,
       boot_delta_sum, boot_delta_runs, boot_successes, boot_finished
FROM (SELECT a.*, u.pairs, u.seeds, u.boot_delta_sum, u.boot_delta_runs, u.boot_successes,
             u.boot_finished
      FROM arms a LEFT JOIN units u USING (dataset, method)
      UNION ALL BY NAME SELECT * FROM oracle)
ORDER BY dataset, CASE kind WHEN 'method' THEN 0 WHEN 'control' THEN 1 ELSE 2 END,
         mean_delta DESC NULLS LAST, method;
