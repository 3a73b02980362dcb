-- Each method beside the control arms and the ensemble oracle: a method's gain counts only where it
-- beats training the student without the teacher's knowledge. Controls: random_teacher (a randomly
-- initialised teacher), self_distill (the frozen initial student as target), xe_finetune (plain
-- cross-entropy fine-tuning, same budget). Oracle: the confidence ensemble of teacher and student,
-- no training (pair_stats.ensemble_acc - acc_s), over the pairs of the ok runs. Final dist_delta
-- over ok runs (population std); success = share of ok and diverged runs with dist_delta > 0.
WITH runs AS (
    SELECT * REPLACE (method || CASE WHEN coalesce(compat, '') = '' THEN ''
                                     ELSE ' (' || compat || ')' END AS method),
           method AS base_method
    FROM (SELECT * FROM transfer_runs
          UNION ALL BY NAME SELECT NULL AS mode, NULL AS teachers WHERE false)
    WHERE coalesce(CAST(mode AS VARCHAR), '') IN ('', 'single')
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
    FROM runs
    GROUP BY dataset, method
),
oracle_pairs AS (
    SELECT p.dataset, p.student, p.ensemble_acc - p.acc_s AS delta
    FROM (SELECT * FROM pair_stats QUALIFY row_number() OVER
          (PARTITION BY teacher, student, dataset ORDER BY compat) = 1) p
    SEMI JOIN (SELECT dataset, teacher, student FROM runs WHERE status = 'ok') r
        ON r.dataset = p.dataset AND r.teacher = p.teacher AND r.student = p.student
    WHERE p.ensemble_acc IS NOT NULL
),
oracle AS (
    SELECT dataset, '(ensemble oracle)' AS method, 'oracle' AS kind,
           count(*) AS runs, count(DISTINCT student) AS students,
           avg(delta) AS mean_delta, stddev_pop(delta) AS std_delta, median(delta) AS median_delta,
           100.0 * avg(CASE WHEN delta > 0 THEN 1 ELSE 0 END) AS success,
           0 AS diverged, 0 AS failed
    FROM oracle_pairs
    GROUP BY dataset
)
SELECT dataset, method, kind, runs, students,
       round(mean_delta, 2) AS mean_delta, round(std_delta, 2) AS std_delta,
       round(median_delta, 2) AS median_delta, round(success, 1) AS success,
       diverged, failed
FROM (SELECT * FROM arms UNION ALL SELECT * FROM oracle)
ORDER BY dataset, CASE kind WHEN 'method' THEN 0 WHEN 'control' THEN 1 ELSE 2 END,
         mean_delta DESC NULLS LAST, method;
