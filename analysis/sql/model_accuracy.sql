-- Each model's measured top-1 on the evaluation split against its reported top-1 (docs/protocol.md#evaluation):
-- a model more than 5 points off is flagged (check its weights, head and preprocessing).
SELECT model, zoo, dataset, arch, round(top1, 2) AS top1,
       round(top1_reported, 2) AS top1_reported,
       round(top1 - top1_reported, 2) AS gap,
       coalesce(abs(top1 - top1_reported) > 5, false) AS flagged
FROM models
ORDER BY flagged DESC, abs(top1 - top1_reported) DESC NULLS LAST, model;
