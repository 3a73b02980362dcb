-- Complementary knowledge of a randomly initialised network (docs/methods.md#random-init-baseline):
-- the pairs whose teacher is a zoo architecture randomly initialised (model `<model>@random`,
-- written by random_init_baseline) and whose student is a trained model: the smallest, mean and
-- largest rho_pos (% of eval samples the random teacher gets right and the student wrong), beside
-- the smallest and median rho_pos of the trained teachers' pairs of the same students. The paper
-- sets a random ResNet-50's about 0.03% against 2-25% for trained pairs. One row per pair: the
-- default definitions where a compat mode was computed too. 95% bootstrap interval of the mean:
-- resampling pairs. Empty until the baseline ran.
WITH pairs AS (
    SELECT * FROM pair_stats
    QUALIFY row_number() OVER (PARTITION BY teacher, student, dataset ORDER BY compat) = 1
),
random_teacher AS (
    SELECT * FROM pairs
    WHERE ends_with(teacher, '@random') AND NOT ends_with(student, '@random')
),
trained AS (
    SELECT p.dataset, min(p.pos_flips) AS min_trained, median(p.pos_flips) AS median_trained
    FROM pairs p
    WHERE NOT ends_with(p.teacher, '@random')
      AND (p.dataset, p.student) IN (SELECT (dataset, student) FROM random_teacher)
    GROUP BY p.dataset
)
SELECT r.dataset,
       count(*) AS pairs,
       round(min(r.pos_flips), 3) AS min_rho_pos,
       round(avg(r.pos_flips), 3) AS mean_rho_pos,
       round(max(r.pos_flips), 3) AS max_rho_pos,
       round(any_value(t.min_trained), 3) AS min_trained_rho_pos,
       round(any_value(t.median_trained), 3) AS median_trained_rho_pos,
       list(r.pos_flips ORDER BY r.teacher, r.student) AS boot_rho_pos
FROM random_teacher r
LEFT JOIN trained t USING (dataset)
GROUP BY r.dataset
ORDER BY r.dataset;
