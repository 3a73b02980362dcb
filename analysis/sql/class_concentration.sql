-- Per-class concentration of complementary knowledge (docs/definitions.md#per-class-concentration): the entropy of the per-class
-- positive (and negative) flip counts, natural log, against a uniform spread's ln(classes); and the
-- fewest classes holding the top 2/5/20/50% of a pair's positive flips, as counts and as % of the
-- classes. Per compat mode, since compat changes the top-p% counts.
WITH classes AS (
    SELECT dataset, max(num_classes) AS classes FROM models GROUP BY dataset
)
SELECT p.dataset, p.compat,
       count(*) AS pairs,
       any_value(c.classes) AS classes,
       round(ln(any_value(c.classes)), 3) AS uniform_entropy,
       round(avg(p.pos_entropy), 3) AS mean_pos_entropy,
       round(median(p.pos_entropy), 3) AS median_pos_entropy,
       round(avg(p.neg_entropy), 3) AS mean_neg_entropy,
       round(avg(p.pos_classes_top2), 2) AS mean_top2_classes,
       round(avg(p.pos_classes_top5), 2) AS mean_top5_classes,
       round(avg(p.pos_classes_top20), 2) AS mean_top20_classes,
       round(avg(p.pos_classes_top50), 2) AS mean_top50_classes,
       round(100 * avg(p.pos_classes_top50) / any_value(c.classes), 1) AS top50_classes_pct
FROM pair_stats p
LEFT JOIN classes c USING (dataset)
GROUP BY p.dataset, p.compat
ORDER BY p.dataset, p.compat;
