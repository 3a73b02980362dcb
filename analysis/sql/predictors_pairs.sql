-- Every pair's predictors of transfer (issue 10), one row per (dataset, teacher, student): from
-- pair_stats (compat '' preferred) the accuracy gap, rho_pos / rho_neg and the concentration of
-- the flips over classes; from pair_predictors linear CKA of the features, Cohen's kappa of
-- correctness, and the teacher's LEEP and NCE for the labels on the samples the student gets
-- wrong (leep_err, nce_err); from model_predictors the teacher's (_t) and student's (_s) TMI,
-- LogME, H-score, LEEP and NCE and their difference (_diff = teacher - student); from models the
-- teacher's and student's parameter counts (params_t, params_s, millions: static, like acc_t and
-- acc_s). split: the data the predictors were computed on ('eval' preferred where both exist;
-- pair_stats is eval).
WITH ps AS (
    SELECT * FROM pair_stats
    QUALIFY row_number() OVER (PARTITION BY teacher, student, dataset
                               ORDER BY coalesce(compat, '') <> '', compat) = 1
),
pp AS (
    SELECT * FROM pair_predictors
    QUALIFY row_number() OVER (PARTITION BY teacher, student, dataset
                               ORDER BY split <> 'eval', split) = 1
),
mp AS (
    SELECT * FROM model_predictors
    QUALIFY row_number() OVER (PARTITION BY model, dataset ORDER BY split <> 'eval', split) = 1
),
sizes AS (
    SELECT model, dataset, max(params_m) AS params_m FROM models GROUP BY model, dataset
),
pairs AS (
    SELECT dataset, teacher, student FROM ps
    UNION
    SELECT dataset, teacher, student FROM pp
)
SELECT p.dataset, coalesce(pp.split, mt.split) AS split, p.teacher, p.student,
       ps.ts_diff, ps.acc_t, ps.acc_s, ps.pos_flips, ps.neg_flips,
       ps.pos_entropy, ps.neg_entropy, ps.pos_classes_top2, ps.pos_classes_top5,
       ps.pos_classes_top20, ps.pos_classes_top50, ps.ensemble_acc,
       st.params_m AS params_t, ss.params_m AS params_s,
       pp.cka, pp.kappa, pp.leep_err, pp.nce_err,
       mt.tmi AS tmi_t, ms.tmi AS tmi_s, mt.tmi - ms.tmi AS tmi_diff,
       mt.logme AS logme_t, ms.logme AS logme_s, mt.logme - ms.logme AS logme_diff,
       mt.hscore AS hscore_t, ms.hscore AS hscore_s, mt.hscore - ms.hscore AS hscore_diff,
       mt.leep AS leep_t, ms.leep AS leep_s, mt.leep - ms.leep AS leep_diff,
       mt.nce AS nce_t, ms.nce AS nce_s, mt.nce - ms.nce AS nce_diff
FROM pairs p
LEFT JOIN ps USING (dataset, teacher, student)
LEFT JOIN pp USING (dataset, teacher, student)
LEFT JOIN mp mt ON mt.model = p.teacher AND mt.dataset = p.dataset
LEFT JOIN mp ms ON ms.model = p.student AND ms.dataset = p.dataset
LEFT JOIN sizes st ON st.model = p.teacher AND st.dataset = p.dataset
LEFT JOIN sizes ss ON ss.model = p.student AND ss.dataset = p.dataset
ORDER BY p.dataset, p.teacher, p.student;
