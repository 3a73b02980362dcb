-- Complementary knowledge over all pairs (paper.md 1.1): range and median of rho_pos and rho_neg.
SELECT count(*) AS pairs,
       round(min(pos_flips), 2) AS min_rho_pos,
       round(median(pos_flips), 2) AS median_rho_pos,
       round(max(pos_flips), 2) AS max_rho_pos,
       round(min(neg_flips), 2) AS min_rho_neg,
       round(median(neg_flips), 2) AS median_rho_neg,
       round(max(neg_flips), 2) AS max_rho_neg,
       round(median(pos_entropy), 3) AS median_pos_entropy
FROM pair_stats
WHERE compat = '';
