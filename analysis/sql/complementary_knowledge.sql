-- Complementary knowledge over all pairs (docs/definitions.md#complementary-knowledge): the range and median of rho_pos (% of
-- eval samples the teacher gets right and the student wrong) and rho_neg. One row per pair: the
-- default definitions where both they and a compat mode were computed. Pairs of the random-init
-- baseline (`<model>@random`) are left out: they are random_init_flips'.
WITH pairs AS (
    SELECT * FROM pair_stats
    WHERE NOT ends_with(teacher, '@random') AND NOT ends_with(student, '@random')
    QUALIFY row_number() OVER (PARTITION BY teacher, student, dataset ORDER BY compat) = 1
)
SELECT dataset,
       count(*) AS pairs,
       round(min(pos_flips), 2) AS min_rho_pos,
       round(median(pos_flips), 2) AS median_rho_pos,
       round(max(pos_flips), 2) AS max_rho_pos,
       round(min(neg_flips), 2) AS min_rho_neg,
       round(median(neg_flips), 2) AS median_rho_neg,
       round(max(neg_flips), 2) AS max_rho_neg
FROM pairs
GROUP BY dataset
ORDER BY dataset;
