-- Linear probes (docs/protocol.md#probes): each model's head fitted on a dataset's train split
-- with its backbone frozen, and its top-1 on the train and eval splits (eval: the model's
-- accuracy on that dataset in every other table), by dataset and recipe, best first.
SELECT dataset, recipe, model, zoo, num_classes, dim AS feature_dim,
       round(train_top1, 2) AS train_top1, round(eval_top1, 2) AS probe_top1,
       round(seconds, 1) AS seconds
FROM probes
ORDER BY dataset, recipe, eval_top1 DESC, model;
