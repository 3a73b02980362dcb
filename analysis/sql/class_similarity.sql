-- Semantic relatedness of the classes where a teacher's complementary knowledge sits
-- (docs/definitions.md#class-name-similarity; table pair_similarity, written by ktbench similarity).
-- Per dataset, compat mode, text encoder and top-p%: the pairs; the mean number of classes holding
-- p% of a pair's positive flips and their share of the flips; the mean over pairs of the mean and
-- of the max pairwise cosine similarity of those classes' names; and beside them random class sets
-- of the same size (random_mean_sim: the mean over all pairs of classes, the expectation for any
-- size; random_max_sim: the mean max over seeded draws). uplift_pct = 100 (mean_sim / baseline - 1)
-- per pair, averaged, where baseline is random_mean_sim, or under compat fantasticgains the
-- authors' constant 0.61; max_uplift_pct the same for max_sim against random_max_sim.
-- above_random_95: % of pairs whose classes are more related than 95% of the random sets of their
-- size. Sets of fewer than two classes have no pairwise similarity and are left out. 95% bootstrap
-- intervals resample pairs.
WITH s AS (
    SELECT *, CASE WHEN compat = 'fantasticgains' THEN 0.61 ELSE random_mean_sim END AS baseline
    FROM pair_similarity
    WHERE mean_sim IS NOT NULL
)
SELECT dataset, compat, encoder, weights, p,
       count(*) AS pairs,
       round(avg(classes), 1) AS mean_classes,
       round(avg(flip_share), 1) AS flip_share,
       round(avg(mean_sim), 3) AS mean_sim,
       round(avg(baseline), 3) AS baseline,
       round(100 * avg(mean_sim / baseline - 1), 1) AS uplift_pct,
       round(avg(max_sim), 3) AS max_sim,
       round(avg(random_max_sim), 3) AS random_max_sim,
       round(100 * avg(max_sim / random_max_sim - 1), 1) AS max_uplift_pct,
       round(100 * avg(CASE WHEN mean_sim_rank >= 95 THEN 1 ELSE 0 END), 1) AS above_random_95,
       list(mean_sim ORDER BY teacher, student) AS boot_mean_sim,
       list(mean_sim / baseline - 1 ORDER BY teacher, student) AS boot_uplift,
       list(max_sim / random_max_sim - 1 ORDER BY teacher, student) AS boot_max_uplift
FROM s
GROUP BY dataset, compat, encoder, weights, p
ORDER BY dataset, compat, encoder, weights, p;
