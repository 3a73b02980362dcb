-- The DuckDB views over a ktbench results folder: one view per table, one row per natural key.
-- GENERATED from results/schema.py by `python -m results.views`; do not edit by hand.
--
-- Needs one parameter, the results folder, as a DuckDB variable:
--   duckdb -c "SET VARIABLE results = 'ktbench-results'" -c ".read results/views.sql" \
--          -c ".read analysis/sql/success_rate.sql"
-- or in Python:
--   con = duckdb.connect(); con.execute("SET VARIABLE results = ?", [folder])
--   con.execute(open("results/views.sql").read())
--
-- Each table is a folder of Parquet files, <results>/<table>/*.parquet (hidden temporary files
-- are never matched): compacted files (compacted-<generation>-*.parquet) and parts. The file list
-- is taken when this file runs (a snapshot): run it again to see files written since. Where
-- files hold the same natural key, the row read last wins (files in the order compacted by
-- generation, then parts; rows in file order): a part written after a compaction beats the
-- compacted copy of its key. A table without files is an empty view that still has every column.

SET VARIABLE kt_results = coalesce(getvariable('results'),
    error('set the results folder first: SET VARIABLE results = ''DIR'''));

SET VARIABLE kt_parts_models = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/models/*.parquet'));
CREATE OR REPLACE VIEW "models" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "key",
           NULL::VARCHAR AS "model",
           NULL::VARCHAR AS "zoo",
           NULL::VARCHAR AS "family",
           NULL::VARCHAR AS "arch",
           NULL::DOUBLE AS "params_m",
           NULL::VARCHAR AS "source",
           NULL::VARCHAR AS "dataset",
           NULL::INTEGER AS "num_classes",
           NULL::DOUBLE AS "top1",
           NULL::DOUBLE AS "top1_reported",
           NULL::INTEGER AS "img_size",
           NULL::INTEGER AS "n_eval",
           NULL::DOUBLE AS "seconds",
           NULL::DOUBLE AS "crop_pct",
           NULL::VARCHAR AS "interpolation",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_models')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_models''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "model", "dataset" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_predictions = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/predictions/*.parquet'));
CREATE OR REPLACE VIEW "predictions" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "model",
           NULL::VARCHAR AS "dataset",
           NULL::INTEGER AS "sample",
           NULL::INTEGER AS "label",
           NULL::INTEGER AS "pred",
           NULL::FLOAT AS "p_true",
           NULL::FLOAT AS "p_max",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_predictions')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_predictions''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "model", "dataset", "sample" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_pair_stats = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/pair_stats/*.parquet'));
CREATE OR REPLACE VIEW "pair_stats" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "teacher",
           NULL::VARCHAR AS "student",
           NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "compat",
           NULL::DOUBLE AS "acc_t",
           NULL::DOUBLE AS "acc_s",
           NULL::DOUBLE AS "ts_diff",
           NULL::DOUBLE AS "pos_flips",
           NULL::DOUBLE AS "neg_flips",
           NULL::DOUBLE AS "pos_entropy",
           NULL::DOUBLE AS "neg_entropy",
           NULL::INTEGER AS "pos_classes_top2",
           NULL::INTEGER AS "pos_classes_top5",
           NULL::INTEGER AS "pos_classes_top20",
           NULL::INTEGER AS "pos_classes_top50",
           NULL::DOUBLE AS "ensemble_acc",
           NULL::VARCHAR AS "teacher_key",
           NULL::VARCHAR AS "student_key",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_pair_stats')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_pair_stats''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "teacher", "student", "dataset", "compat" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_class_flips = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/class_flips/*.parquet'));
CREATE OR REPLACE VIEW "class_flips" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "teacher",
           NULL::VARCHAR AS "student",
           NULL::VARCHAR AS "dataset",
           NULL::INTEGER AS "class",
           NULL::INTEGER AS "pos",
           NULL::INTEGER AS "neg",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_class_flips')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_class_flips''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "teacher", "student", "dataset", "class" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_transfer_epochs = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/transfer_epochs/*.parquet'));
CREATE OR REPLACE VIEW "transfer_epochs" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "key",
           NULL::INTEGER AS "epoch",
           NULL::DOUBLE AS "student_acc",
           NULL::DOUBLE AS "dist_delta",
           NULL::DOUBLE AS "knowledge_gain",
           NULL::DOUBLE AS "knowledge_loss",
           NULL::DOUBLE AS "positive_flips",
           NULL::DOUBLE AS "negative_flips",
           NULL::DOUBLE AS "pos_flips_delta",
           NULL::DOUBLE AS "neg_flips_delta",
           NULL::DOUBLE AS "top2_improve",
           NULL::DOUBLE AS "top5_improve",
           NULL::DOUBLE AS "top20_improve",
           NULL::DOUBLE AS "top50_improve",
           NULL::DOUBLE AS "top100_improve",
           NULL::DOUBLE AS "other_improve",
           NULL::DOUBLE AS "ent_dist_flips",
           NULL::DOUBLE AS "transfer_rate",
           NULL::DOUBLE AS "teacher_input",
           NULL::DOUBLE AS "loss",
           NULL::DOUBLE AS "images_per_s",
           NULL::DOUBLE AS "seconds",
           NULL::INTEGER AS "step",
           NULL::VARCHAR AS "step_teacher",
           NULL::DOUBLE AS "dist_delta_step",
           NULL::DOUBLE AS "knowledge_gain_step",
           NULL::DOUBLE AS "knowledge_loss_step",
           NULL::DOUBLE AS "transfer_rate_top2",
           NULL::DOUBLE AS "transfer_rate_top5",
           NULL::DOUBLE AS "transfer_rate_top20",
           NULL::DOUBLE AS "transfer_rate_top50",
           NULL::DOUBLE AS "transfer_rate_top100",
           NULL::DOUBLE AS "complementary_transferred",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_transfer_epochs')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_transfer_epochs''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "key", "epoch" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_transfer_runs = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/transfer_runs/*.parquet'));
CREATE OR REPLACE VIEW "transfer_runs" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "key",
           NULL::VARCHAR AS "plan",
           NULL::VARCHAR AS "teacher",
           NULL::VARCHAR AS "student",
           NULL::VARCHAR AS "method",
           NULL::VARCHAR AS "params",
           NULL::BIGINT AS "seed",
           NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "compat",
           NULL::VARCHAR AS "status",
           NULL::VARCHAR AS "teachers",
           NULL::VARCHAR AS "mode",
           NULL::INTEGER AS "epochs",
           NULL::DOUBLE AS "acc_t",
           NULL::DOUBLE AS "acc_s",
           NULL::DOUBLE AS "ts_diff",
           NULL::DOUBLE AS "student_acc",
           NULL::DOUBLE AS "dist_delta",
           NULL::DOUBLE AS "knowledge_gain",
           NULL::DOUBLE AS "knowledge_loss",
           NULL::DOUBLE AS "transfer_rate",
           NULL::VARCHAR AS "error",
           NULL::DOUBLE AS "wall_s",
           NULL::VARCHAR AS "host",
           NULL::VARCHAR AS "job_id",
           NULL::VARCHAR AS "code_version",
           NULL::TIMESTAMP WITH TIME ZONE AS "started_at",
           NULL::TIMESTAMP WITH TIME ZONE AS "finished_at",
           NULL::INTEGER AS "batch_size",
           NULL::INTEGER AS "oom_retries",
           NULL::BIGINT AS "disk_bytes",
           NULL::DOUBLE AS "transfer_rate_top2",
           NULL::DOUBLE AS "transfer_rate_top5",
           NULL::DOUBLE AS "transfer_rate_top20",
           NULL::DOUBLE AS "transfer_rate_top50",
           NULL::DOUBLE AS "transfer_rate_top100",
           NULL::DOUBLE AS "complementary_transferred",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_transfer_runs')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_transfer_runs''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "key" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_features = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/features/*.parquet'));
CREATE OR REPLACE VIEW "features" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "key",
           NULL::VARCHAR AS "model",
           NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "split",
           NULL::INTEGER AS "samples",
           NULL::INTEGER AS "dim",
           NULL::INTEGER AS "num_logits",
           NULL::VARCHAR AS "path",
           NULL::DOUBLE AS "top1",
           NULL::DOUBLE AS "seconds",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_features')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_features''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "key", "split" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_probes = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/probes/*.parquet'));
CREATE OR REPLACE VIEW "probes" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "key",
           NULL::VARCHAR AS "model",
           NULL::VARCHAR AS "zoo",
           NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "recipe",
           NULL::INTEGER AS "num_classes",
           NULL::INTEGER AS "dim",
           NULL::INTEGER AS "train_samples",
           NULL::INTEGER AS "eval_samples",
           NULL::DOUBLE AS "train_top1",
           NULL::DOUBLE AS "eval_top1",
           NULL::DOUBLE AS "seconds",
           NULL::VARCHAR AS "head",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_probes')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_probes''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "key" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_model_predictors = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/model_predictors/*.parquet'));
CREATE OR REPLACE VIEW "model_predictors" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "model",
           NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "split",
           NULL::INTEGER AS "samples",
           NULL::INTEGER AS "dim",
           NULL::DOUBLE AS "top1",
           NULL::DOUBLE AS "tmi",
           NULL::DOUBLE AS "logme",
           NULL::DOUBLE AS "hscore",
           NULL::DOUBLE AS "leep",
           NULL::DOUBLE AS "nce",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_model_predictors')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_model_predictors''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "model", "dataset", "split" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_pair_predictors = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/pair_predictors/*.parquet'));
CREATE OR REPLACE VIEW "pair_predictors" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "teacher",
           NULL::VARCHAR AS "student",
           NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "split",
           NULL::INTEGER AS "samples",
           NULL::INTEGER AS "cka_samples",
           NULL::DOUBLE AS "cka",
           NULL::DOUBLE AS "kappa",
           NULL::DOUBLE AS "leep_err",
           NULL::DOUBLE AS "nce_err",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_pair_predictors')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_pair_predictors''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "teacher", "student", "dataset", "split" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_teacher_sets = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/teacher_sets/*.parquet'));
CREATE OR REPLACE VIEW "teacher_sets" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "split",
           NULL::VARCHAR AS "student",
           NULL::INTEGER AS "k",
           NULL::VARCHAR AS "strategy",
           NULL::VARCHAR AS "teachers",
           NULL::DOUBLE AS "coverage",
           NULL::DOUBLE AS "redundancy",
           NULL::DOUBLE AS "score",
           NULL::DOUBLE AS "oracle_acc",
           NULL::DOUBLE AS "lam",
           NULL::INTEGER AS "draws",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_teacher_sets')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_teacher_sets''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "dataset", "split", "student", "k", "strategy" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_class_embeddings = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/class_embeddings/*.parquet'));
CREATE OR REPLACE VIEW "class_embeddings" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "encoder",
           NULL::VARCHAR AS "weights",
           NULL::INTEGER AS "class",
           NULL::VARCHAR AS "name",
           NULL::FLOAT[] AS "embedding",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_class_embeddings')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_class_embeddings''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "dataset", "encoder", "weights", "class" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_pair_similarity = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/pair_similarity/*.parquet'));
CREATE OR REPLACE VIEW "pair_similarity" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "teacher",
           NULL::VARCHAR AS "student",
           NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "compat",
           NULL::VARCHAR AS "encoder",
           NULL::VARCHAR AS "weights",
           NULL::INTEGER AS "p",
           NULL::INTEGER AS "classes",
           NULL::DOUBLE AS "flip_share",
           NULL::DOUBLE AS "mean_sim",
           NULL::DOUBLE AS "max_sim",
           NULL::DOUBLE AS "random_mean_sim",
           NULL::DOUBLE AS "random_max_sim",
           NULL::DOUBLE AS "mean_sim_rank",
           NULL::INTEGER AS "draws",
           NULL::BIGINT AS "seed",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_pair_similarity')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_pair_similarity''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "teacher", "student", "dataset", "compat", "encoder", "weights", "p" ORDER BY kt_file DESC, kt_row DESC) = 1;

SET VARIABLE kt_parts_unit_failures = (
    SELECT coalesce(list(file ORDER BY starts_with(parse_filename(file), 'compacted-') DESC,
                                       file), [])
    FROM glob(getvariable('kt_results') || '/unit_failures/*.parquet'));
CREATE OR REPLACE VIEW "unit_failures" AS
SELECT * EXCLUDE (kt_file, kt_row) FROM (
    SELECT NULL::VARCHAR AS "stage",
           NULL::VARCHAR AS "key",
           NULL::VARCHAR AS "dataset",
           NULL::VARCHAR AS "unit",
           NULL::VARCHAR AS "message",
           NULL::VARCHAR AS "error",
           NULL::VARCHAR AS "job_id",
           NULL::VARCHAR AS "host",
           NULL::VARCHAR AS "code_version",
           NULL::TIMESTAMP WITH TIME ZONE AS "failed_at",
           NULL::BIGINT AS "kt_file",
           NULL::BIGINT AS "kt_row"
    WHERE false
    UNION ALL BY NAME
    SELECT * FROM query(CASE WHEN len(getvariable('kt_parts_unit_failures')) > 0
        THEN 'SELECT *, file_index AS kt_file, file_row_number AS kt_row FROM read_parquet(getvariable(''kt_parts_unit_failures''), union_by_name = true)'
        ELSE 'SELECT NULL AS kt_file WHERE false' END)
)
QUALIFY row_number() OVER (PARTITION BY "stage", "key" ORDER BY kt_file DESC, kt_row DESC) = 1;
