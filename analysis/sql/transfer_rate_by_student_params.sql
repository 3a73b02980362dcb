-- Transfer rate by student size (docs/definitions.md#transfer-rates, `transfer_rate_plot_b`): per
-- method and student, over the student's ok runs, the mean and interquartile range of the run's
-- final transfer rate as the authors plot it against student size, TR = 100 x (gained flips in
-- the classes with initial complementary knowledge) / (positive flips left at the end), %
-- (transfer_runs.transfer_rate_top100, the final epoch's value in transfer_epochs); beside it
-- the mean of the authors' logged transfer_rate (the same gains / initial positive flips, %) and
-- of complementary_transferred (% of the initial complementary knowledge the student now gets
-- right); with the student's family and params (millions). Undefined values (nan) and columns
-- an older results folder lacks (NULL) are left out.
SELECT r.dataset, r.method, coalesce(m.family, '?') AS family, r.student,
       any_value(m.params_m) AS params_m,
       count(*) AS runs,
       round(avg(nullif(r.transfer_rate_top100, 'NaN'::DOUBLE)), 2) AS transfer_rate_top100,
       round(quantile_cont(nullif(r.transfer_rate_top100, 'NaN'::DOUBLE), 0.25), 2)
           AS q25_transfer_rate_top100,
       round(quantile_cont(nullif(r.transfer_rate_top100, 'NaN'::DOUBLE), 0.75), 2)
           AS q75_transfer_rate_top100,
       round(avg(nullif(r.transfer_rate, 'NaN'::DOUBLE)), 2) AS transfer_rate,
       round(avg(nullif(r.complementary_transferred, 'NaN'::DOUBLE)), 2)
           AS complementary_transferred
FROM single_runs r
LEFT JOIN models m ON m.model = r.student AND m.dataset = r.dataset
WHERE r.status = 'ok'
GROUP BY r.dataset, r.method, coalesce(m.family, '?'), r.student
ORDER BY r.dataset, r.method, params_m, r.student;
