-- Teacher sets for a student (issue 10, benchmark/predictors/teachers.py), chosen greedily by a
-- submodular score (coverage of the student's errors by the teachers' complementary knowledge,
-- minus lam x redundancy), by accuracy (the k best models) or at random (mean over `draws` sets):
-- per set size k and strategy, the mean over students of the coverage (% of the student's errors
-- some teacher gets right), redundancy (% covered more than once, counted per extra teacher),
-- score and the oracle ensemble's accuracy, and the coverage beside the random sets': the mean
-- difference and the share of students where the strategy covers more.
WITH sets AS (SELECT * FROM teacher_sets),
rnd AS (
    SELECT dataset, split, student, k, coverage AS random_coverage
    FROM sets WHERE strategy = 'random'
)
SELECT s.dataset, s.split, s.k, s.strategy, count(*) AS students,
       round(avg(s.coverage), 2) AS coverage,
       round(avg(s.redundancy), 2) AS redundancy,
       round(avg(s.score), 2) AS score,
       round(avg(s.oracle_acc), 2) AS oracle_acc,
       round(avg(s.coverage - r.random_coverage), 2) AS coverage_vs_random,
       round(100 * avg(CASE WHEN s.coverage > r.random_coverage THEN 1.0 ELSE 0.0 END), 1)
           AS pct_above_random
FROM sets s
LEFT JOIN rnd r USING (dataset, split, student, k)
GROUP BY s.dataset, s.split, s.k, s.strategy
ORDER BY s.dataset, s.split, s.k, s.strategy;
