-- Supervised against unsupervised data partitioning (docs/methods.md#kl-dp): kl_dp (a sample
-- goes to the teacher where its true-class probability beats the frozen student's) beside
-- kl_dp_unsup (its max softmax, no labels), paired on the same dataset, teacher, student, seed
-- and compat mode, both ok. Per pair the mean over its seeds of unsupervised minus supervised
-- final dist_delta; then per compat mode: matched pairs and runs, each arm's mean delta and
-- success (% of the matched runs with dist_delta > 0), and the mean and median paired difference
-- (mean_gain, median_gain: above 0 where unsupervised does better). ktbench tables adds a 95%
-- bootstrap interval of the mean (resampling pairs), wins / losses / ties, and the sign and
-- signed-rank tests with a verdict at p < 0.05, as gain_over_controls.
WITH dp AS (
    SELECT dataset, teacher, student, seed, coalesce(compat, '') AS compat, base_method, method,
           dist_delta
    FROM single_runs
    WHERE status = 'ok' AND dist_delta IS NOT NULL AND base_method IN ('kl_dp', 'kl_dp_unsup')
),
matched AS (
    SELECT u.dataset, s.method AS supervised, u.method AS unsupervised, u.teacher, u.student,
           count(*) AS runs,
           avg(s.dist_delta) AS supervised_delta,
           avg(u.dist_delta) AS unsupervised_delta,
           count(*) FILTER (WHERE s.dist_delta > 0) AS supervised_successes,
           count(*) FILTER (WHERE u.dist_delta > 0) AS unsupervised_successes,
           avg(u.dist_delta - s.dist_delta) AS gain
    FROM dp u
    JOIN dp s USING (dataset, teacher, student, seed, compat)
    WHERE u.base_method = 'kl_dp_unsup' AND s.base_method = 'kl_dp'
    GROUP BY u.dataset, s.method, u.method, u.teacher, u.student
)
SELECT dataset, supervised, unsupervised,
       count(*) AS pairs,
       CAST(sum(runs) AS BIGINT) AS matched_runs,
       round(avg(supervised_delta), 2) AS supervised_delta,
       round(avg(unsupervised_delta), 2) AS unsupervised_delta,
       round(100.0 * sum(supervised_successes) / sum(runs), 1) AS supervised_success,
       round(100.0 * sum(unsupervised_successes) / sum(runs), 1) AS unsupervised_success,
       round(avg(gain), 2) AS mean_gain,
       round(median(gain), 2) AS median_gain,
       list(gain ORDER BY teacher, student) AS boot_gain
FROM matched
GROUP BY dataset, supervised, unsupervised
ORDER BY dataset, supervised, unsupervised;
