-- The dist_delta vs ts_diff curve (docs/definitions.md#transfer-metrics, `dist_delta_line_plot_v3`): ts_diff cut into 8
-- equal-width bins between its smallest and largest value over the dataset's ok runs (right-closed,
-- the smallest value in the first bin, as pandas.cut), then per method and bin the mean of the
-- final deltas at or above the bin's 75th percentile (linear interpolation, as numpy). Beside the
-- methods, "(ensemble oracle)": the confidence ensemble's accuracy minus the student's
-- (pair_stats.ensemble_acc - acc_s) over the same pairs, in the same bins. Empty bins have no row.
WITH ok AS (
    SELECT dataset, method, ts_diff, dist_delta FROM single_runs
    WHERE status = 'ok' AND ts_diff IS NOT NULL AND dist_delta IS NOT NULL
),
oracle AS (
    SELECT p.dataset, '(ensemble oracle)' AS method, p.ts_diff, p.ensemble_acc - p.acc_s AS dist_delta
    FROM (SELECT * FROM pair_stats QUALIFY row_number() OVER
          (PARTITION BY teacher, student, dataset ORDER BY compat) = 1) p
    SEMI JOIN (SELECT dataset, teacher, student FROM single_runs WHERE status = 'ok') r
        ON r.dataset = p.dataset AND r.teacher = p.teacher AND r.student = p.student
    WHERE p.ensemble_acc IS NOT NULL
),
edges AS (
    SELECT dataset, min(ts_diff) AS lo, (max(ts_diff) - min(ts_diff)) / 8 AS width
    FROM ok GROUP BY dataset
),
binned AS (
    SELECT x.dataset, x.method, x.dist_delta, e.lo, e.width,
           CASE WHEN e.width = 0 THEN 0
                ELSE least(7, greatest(0, CAST(ceil((x.ts_diff - e.lo) / e.width) AS INTEGER) - 1))
           END AS bin
    FROM (SELECT * FROM ok UNION ALL SELECT * FROM oracle) x
    JOIN edges e USING (dataset)
),
q AS (
    SELECT dataset, method, bin, quantile_cont(dist_delta, 0.75) AS q75
    FROM binned GROUP BY dataset, method, bin
)
SELECT b.dataset, b.method, b.bin + 1 AS bin,
       round(any_value(b.lo) + b.bin * any_value(b.width), 3) AS ts_diff_lo,
       round(any_value(b.lo) + (b.bin + 1) * any_value(b.width), 3) AS ts_diff_hi,
       round(any_value(b.lo) + (b.bin + 0.5) * any_value(b.width), 3) AS ts_diff_mid,
       count(*) AS runs,
       round(avg(b.dist_delta), 3) AS mean_delta,
       round(any_value(q.q75), 3) AS q75_delta,
       round(avg(b.dist_delta) FILTER (WHERE b.dist_delta >= q.q75), 3) AS upper_quartile_mean
FROM binned b
JOIN q USING (dataset, method, bin)
GROUP BY b.dataset, b.method, b.bin
ORDER BY b.dataset, b.method, b.bin;
