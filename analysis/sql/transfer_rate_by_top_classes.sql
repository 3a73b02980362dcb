-- Where transfer lands (docs/definitions.md#transfer-metrics, `transfer_rate_plot_a`): from each ok run's final epoch in
-- transfer_epochs, the share of the student's gained flips that fall in the classes holding the
-- top 2/5/20/50/100% of the initial complementary knowledge (top{p}_improve, %), and the transfer
-- rate (gained flips in those classes / initial positive flips, %). Mean per method and student
-- family, and over all families ("all"). Undefined values (nan: no gained flips) are left out.
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
           nullif(f.transfer_rate, 'NaN'::DOUBLE) AS transfer_rate
    FROM single_runs r
    JOIN final f USING (key)
    LEFT JOIN models m ON m.model = r.student AND m.dataset = r.dataset
    WHERE r.status = 'ok'
)
SELECT dataset, method,
       CASE WHEN grouping(family) = 1 THEN 'all' ELSE family END AS family,
       count(*) AS runs,
       round(avg(top2), 2) AS top2_improve,
       round(avg(top5), 2) AS top5_improve,
       round(avg(top20), 2) AS top20_improve,
       round(avg(top50), 2) AS top50_improve,
       round(avg(top100), 2) AS top100_improve,
       round(avg(transfer_rate), 2) AS transfer_rate
FROM joined
GROUP BY GROUPING SETS ((dataset, method), (dataset, method, family))
ORDER BY dataset, method, grouping(family) DESC, family;
