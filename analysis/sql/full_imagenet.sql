-- The paper's "full ImageNet" table (docs/protocol.md#models), on whatever dataset the results hold: per
-- student its family, measured accuracy and params, then per method the mean +- std (population
-- std, as the official np.std) of the final dist_delta over its ok runs, "(n)" runs. Diverged and
-- failed runs are not averaged in: the cell says how many there were.
WITH cells AS (
    SELECT dataset, student, method,
           avg(acc_s) AS run_acc_s,
           count(*) FILTER (WHERE status = 'ok') AS n,
           avg(dist_delta) FILTER (WHERE status = 'ok') AS mean_delta,
           stddev_pop(dist_delta) FILTER (WHERE status = 'ok') AS std_delta,
           count(*) FILTER (WHERE status = 'diverged') AS diverged,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM single_runs
    GROUP BY dataset, student, method
)
PIVOT (
    SELECT c.dataset, c.student,
           coalesce(m.family, '?') AS family,
           round(coalesce(m.top1, max(c.run_acc_s) OVER (PARTITION BY c.dataset, c.student)), 2)
               AS acc,
           m.params_m,
           c.method,
           concat_ws(' ',
               CASE WHEN c.n > 0 THEN printf('%+.2f ± %.2f (%d)', c.mean_delta, c.std_delta, c.n) END,
               CASE WHEN c.diverged > 0 THEN printf('[%d diverged]', c.diverged) END,
               CASE WHEN c.failed > 0 THEN printf('[%d failed]', c.failed) END) AS cell
    FROM cells c
    LEFT JOIN models m ON m.model = c.student AND m.dataset = c.dataset
)
ON method USING first(cell)
GROUP BY dataset, student, family, acc, params_m
ORDER BY dataset, family, student;
