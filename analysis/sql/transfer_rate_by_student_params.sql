-- Transfer rate by student size (docs/definitions.md#transfer-metrics, `transfer_rate_plot_b`): per method and student,
-- the mean and interquartile range of the run's final transfer rate (gained flips in the classes
-- with complementary knowledge / initial positive flips, %; transfer_runs.transfer_rate, which is
-- the final epoch's value in transfer_epochs) over the student's ok runs, with the student's family
-- and params (millions). Undefined values (nan) are left out.
SELECT r.dataset, r.method, coalesce(m.family, '?') AS family, r.student,
       any_value(m.params_m) AS params_m,
       count(*) AS runs,
       round(avg(nullif(r.transfer_rate, 'NaN'::DOUBLE)), 2) AS transfer_rate,
       round(quantile_cont(nullif(r.transfer_rate, 'NaN'::DOUBLE), 0.25), 2) AS q25_transfer_rate,
       round(quantile_cont(nullif(r.transfer_rate, 'NaN'::DOUBLE), 0.75), 2) AS q75_transfer_rate
FROM single_runs r
LEFT JOIN models m ON m.model = r.student AND m.dataset = r.dataset
WHERE r.status = 'ok'
GROUP BY r.dataset, r.method, coalesce(m.family, '?'), r.student
ORDER BY r.dataset, r.method, params_m, r.student;
