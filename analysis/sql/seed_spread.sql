-- Training noise (docs/analysis.md#intervals): per method, the training seeds each pair ran and,
-- over the pairs with two or more ok seeds, the spread of the final dist_delta across seeds: the
-- sample std per pair, its mean and max over pairs, and the mean range (max - min). With one seed
-- per pair that spread is not measured, and `note` says so: the other tables' intervals then
-- cover the choice of pairs and students, not the noise of training (plan --seeds 0,1,2).
WITH per_pair AS (
    SELECT dataset, method, teacher, student,
           count(DISTINCT seed) AS seeds,
           count(*) FILTER (WHERE status = 'ok') AS ok_seeds,
           stddev_samp(dist_delta) FILTER (WHERE status = 'ok') AS seed_std,
           max(dist_delta) FILTER (WHERE status = 'ok')
               - min(dist_delta) FILTER (WHERE status = 'ok') AS seed_range
    FROM single_runs
    GROUP BY dataset, method, teacher, student
)
SELECT dataset, method,
       count(*) AS pairs,
       min(seeds) AS min_seeds,
       max(seeds) AS max_seeds,
       count(*) FILTER (WHERE ok_seeds >= 2) AS pairs_with_spread,
       round(avg(seed_std) FILTER (WHERE ok_seeds >= 2), 2) AS mean_seed_std,
       round(max(seed_std) FILTER (WHERE ok_seeds >= 2), 2) AS max_seed_std,
       round(avg(seed_range) FILTER (WHERE ok_seeds >= 2), 2) AS mean_seed_range,
       CASE WHEN count(*) FILTER (WHERE ok_seeds >= 2) = 0
                THEN 'one seed per pair: training noise not measured'
            WHEN count(*) FILTER (WHERE ok_seeds >= 2) < count(*)
                THEN 'some pairs have one ok seed: their noise is not measured'
            ELSE '' END AS note
FROM per_pair
GROUP BY dataset, method
ORDER BY dataset, method;
