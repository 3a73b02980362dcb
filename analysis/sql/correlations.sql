-- What predicts transfer (docs/definitions.md#transfer-metrics, `teacher_influence_plot`): per method, the Pearson
-- correlation of the final dist_delta (ok runs) with the teacher's and the student's params,
-- initial accuracy and family, the family encoded as the paper does (transformer 0, cnn 1, mlp 2;
-- other families are left out of that column). Empty where a correlation is undefined (fewer than
-- two runs, or a constant property).
WITH props AS (
    SELECT r.dataset, r.method, r.dist_delta,
           mt.params_m AS t_params, coalesce(r.acc_t, mt.top1) AS t_acc,
           CASE mt.family WHEN 'transformer' THEN 0 WHEN 'cnn' THEN 1 WHEN 'mlp' THEN 2 END AS t_family,
           ms.params_m AS s_params, coalesce(r.acc_s, ms.top1) AS s_acc,
           CASE ms.family WHEN 'transformer' THEN 0 WHEN 'cnn' THEN 1 WHEN 'mlp' THEN 2 END AS s_family
    FROM single_runs r
    LEFT JOIN models mt ON mt.model = r.teacher AND mt.dataset = r.dataset
    LEFT JOIN models ms ON ms.model = r.student AND ms.dataset = r.dataset
    WHERE r.status = 'ok'
)
SELECT dataset, method,
       count(dist_delta) AS runs,
       round(nullif(corr(dist_delta, t_params), 'NaN'::DOUBLE), 3) AS teacher_params,
       round(nullif(corr(dist_delta, t_acc), 'NaN'::DOUBLE), 3) AS teacher_acc,
       round(nullif(corr(dist_delta, t_family), 'NaN'::DOUBLE), 3) AS teacher_family,
       round(nullif(corr(dist_delta, s_params), 'NaN'::DOUBLE), 3) AS student_params,
       round(nullif(corr(dist_delta, s_acc), 'NaN'::DOUBLE), 3) AS student_acc,
       round(nullif(corr(dist_delta, s_family), 'NaN'::DOUBLE), 3) AS student_family
FROM props
GROUP BY dataset, method
ORDER BY dataset, method;
