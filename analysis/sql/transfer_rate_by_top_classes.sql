-- Where transfer lands (docs/definitions.md#transfer-rates): from each ok run's final epoch in
-- transfer_epochs, per top-p% class set (the classes holding the top 2/5/20/50/100% of the
-- initial complementary knowledge), mean per method and student family, and over all families
-- ("all"):
--   transfer_rate_top{p}: the transfer rate the authors plot against the top-X% classes
--     (`transfer_rate_plot_a`), TR_p = 100 - p + 100 x (gained flips in those classes) /
--     (positive flips left at the end), %;
--   top{p}_improve: the share of the student's gained flips in those classes, %;
--   transfer_rate: the authors' logged value, gained flips in the top-100% classes / initial
--     positive flips, %;
--   complementary_transferred: % of the initial complementary knowledge (teacher right, student
--     wrong) the student now gets right.
-- Undefined values (nan: no gained flips, nothing left) and columns an older results folder
-- lacks (NULL) are left out; runs counts the runs.
WITH final AS (
    SELECT * FROM transfer_epochs
    QUALIFY row_number() OVER (PARTITION BY key ORDER BY epoch DESC) = 1
),
joined AS (
    SELECT r.dataset, r.method, coalesce(m.family, '?') AS family,
           nullif(f.top2_improve, 'NaN'::DOUBLE) AS top2,
           nullif(f.top5_improve, 'NaN'::DOUBLE) AS top5,
           nullif(f.top20_improve, 'NaN'::DOUBLE) AS top20,
           nullif(f.top50_improve, 'NaN'::DOUBLE) AS top50,
           nullif(f.top100_improve, 'NaN'::DOUBLE) AS top100,
           nullif(f.transfer_rate, 'NaN'::DOUBLE) AS transfer_rate,
           nullif(f.transfer_rate_top2, 'NaN'::DOUBLE) AS tr_top2,
           nullif(f.transfer_rate_top5, 'NaN'::DOUBLE) AS tr_top5,
           nullif(f.transfer_rate_top20, 'NaN'::DOUBLE) AS tr_top20,
           nullif(f.transfer_rate_top50, 'NaN'::DOUBLE) AS tr_top50,
           nullif(f.transfer_rate_top100, 'NaN'::DOUBLE) AS tr_top100,
           nullif(f.complementary_transferred, 'NaN'::DOUBLE) AS complementary_transferred
    FROM single_runs r
    JOIN final f USING (key)
    LEFT JOIN models m ON m.model = r.student AND m.dataset = r.dataset
    WHERE r.status = 'ok'
)
SELECT dataset, method,
       CASE WHEN grouping(family) = 1 THEN 'all' ELSE family END AS family,
       count(*) AS runs,
       round(avg(tr_top2), 2) AS transfer_rate_top2,
       round(avg(tr_top5), 2) AS transfer_rate_top5,
       round(avg(tr_top20), 2) AS transfer_rate_top20,
       round(avg(tr_top50), 2) AS transfer_rate_top50,
       round(avg(tr_top100), 2) AS transfer_rate_top100,
       round(avg(top2), 2) AS top2_improve,
       round(avg(top5), 2) AS top5_improve,
       round(avg(top20), 2) AS top20_improve,
       round(avg(top50), 2) AS top50_improve,
       round(avg(top100), 2) AS top100_improve,
       round(avg(transfer_rate), 2) AS transfer_rate,
       round(avg(complementary_transferred), 2) AS complementary_transferred
FROM joined
GROUP BY GROUPING SETS ((dataset, method), (dataset, method, family))
ORDER BY dataset, method, grouping(family) DESC, family;
