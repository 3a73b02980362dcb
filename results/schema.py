"""The results contract: one Parquet folder per table, each with a fixed schema.

`analysis` and users rely on these names; README documents them. Every table has a natural
key (`TABLE_KEYS`); the DuckDB views keep one row per key, so a unit that ran twice (a relaunch
racing a slow job) never doubles rows.
"""
import pyarrow as pa

TOP_P_CLASSES = (2, 5, 20, 50)          # docs/definitions.md#per-class-concentration: top-p% class counts K
TOP_P_IMPROVE = (2, 5, 20, 50, 100)     # docs/definitions.md#transfer-metrics: top{p}%_improve

_str, _f64, _i64, _i32, _f32 = pa.string(), pa.float64(), pa.int64(), pa.int32(), pa.float32()


def metric_column(metric_name: str) -> str:
    """Official metric key (`top2%_improve`) -> Parquet column (`top2_improve`): no `%` in SQL."""
    return metric_name.replace("%", "")


TRANSFER_METRICS = (
    ["student_acc", "dist_delta", "knowledge_gain", "knowledge_loss", "positive_flips",
     "negative_flips", "pos_flips_delta", "neg_flips_delta"]
    + [f"top{p}_improve" for p in TOP_P_IMPROVE]
    + ["other_improve", "ent_dist_flips", "transfer_rate"]
)
# docs/definitions.md#transfer-rates: the transfer rate the authors plot (over the complementary
# knowledge left at the end), per top-p% class set, and the sample-level share transferred;
# added after the first release, so they close the transfer tables
TRANSFER_RATES = [f"transfer_rate_top{p}" for p in TOP_P_IMPROVE] + ["complementary_transferred"]

TABLES: dict[str, pa.Schema] = {
    "models": pa.schema([
        ("key", _str), ("model", _str), ("zoo", _str), ("family", _str), ("arch", _str), ("params_m", _f64),
        ("source", _str), ("dataset", _str), ("num_classes", _i32), ("top1", _f64),
        ("top1_reported", _f64), ("img_size", _i32), ("n_eval", _i32), ("seconds", _f64),
        # the decode the model was fed (docs/protocol.md#preprocessing); added after the first
        # release, so they close the table
        ("crop_pct", _f64), ("interpolation", _str),
    ]),
    "predictions": pa.schema([
        ("model", _str), ("dataset", _str), ("sample", _i32), ("label", _i32), ("pred", _i32),
        ("p_true", _f32), ("p_max", _f32),
    ]),
    "pair_stats": pa.schema(
        [("teacher", _str), ("student", _str), ("dataset", _str), ("compat", _str),
         ("acc_t", _f64), ("acc_s", _f64), ("ts_diff", _f64),
         ("pos_flips", _f64), ("neg_flips", _f64), ("pos_entropy", _f64), ("neg_entropy", _f64)]
        + [(f"pos_classes_top{p}", _i32) for p in TOP_P_CLASSES]
        + [("ensemble_acc", _f64)]
        # the predict keys (`models.key`) of the teacher's and the student's predictions the row
        # was computed from: a stats unit is done only while they are the models' current ones;
        # added after the first release, so they close the table
        + [("teacher_key", _str), ("student_key", _str)]
    ),
    "class_flips": pa.schema([
        ("teacher", _str), ("student", _str), ("dataset", _str), ("class", _i32),
        ("pos", _i32), ("neg", _i32),
    ]),
    "transfer_epochs": pa.schema(
        [("key", _str), ("epoch", _i32)]
        + [(m, _f64) for m in TRANSFER_METRICS]
        + [("teacher_input", _f64), ("loss", _f64), ("images_per_s", _f64), ("seconds", _f64)]
        # multi-teacher sequential runs: the step (0 for single-teacher runs), its teacher, and
        # the change from the predictions at the start of the step (= the run's own otherwise)
        + [("step", _i32), ("step_teacher", _str), ("dist_delta_step", _f64),
           ("knowledge_gain_step", _f64), ("knowledge_loss_step", _f64)]
        + [(m, _f64) for m in TRANSFER_RATES]
    ),
    "transfer_runs": pa.schema(
        [("key", _str), ("plan", _str), ("teacher", _str), ("student", _str), ("method", _str),
         ("params", _str), ("seed", _i64), ("dataset", _str), ("compat", _str), ("status", _str),
         # multi-teacher transfer: the comma-joined teacher list and the mode (sequential,
         # sequential_desc, parallel, soup); single-teacher runs: teachers == teacher, mode ''
         ("teachers", _str), ("mode", _str),
         ("epochs", _i32), ("acc_t", _f64), ("acc_s", _f64), ("ts_diff", _f64),
         ("student_acc", _f64), ("dist_delta", _f64), ("knowledge_gain", _f64),
         ("knowledge_loss", _f64), ("transfer_rate", _f64), ("error", _str),
         ("wall_s", _f64), ("host", _str), ("job_id", _str), ("code_version", _str),
         ("started_at", pa.timestamp("us", tz="UTC")),
         ("finished_at", pa.timestamp("us", tz="UTC")),
         # the batch size the run trained with (below the planned one after out-of-memory
         # halvings on a GPU) and how many halvings it took
         ("batch_size", _i32), ("oom_retries", _i32),
         # bytes the unit left on disk beside its rows: its kept student (a failed unit: the
         # checkpoint a retry resumes from)
         ("disk_bytes", _i64)]
        # the final epoch's transfer rates
        + [(m, _f64) for m in TRANSFER_RATES]
    ),
    # predictors (benchmark/features.py, benchmark/predictors/): one row per model and split of
    # stored feature arrays (<results>/<path>/<split>_{features,logits,labels}.npy) ...
    "features": pa.schema([
        ("key", _str), ("model", _str), ("dataset", _str), ("split", _str), ("samples", _i32),
        ("dim", _i32), ("num_logits", _i32), ("path", _str), ("top1", _f64), ("seconds", _f64),
    ]),
    # probes (benchmark/units/probe.py): one row per linear head fitted on a frozen backbone's
    # pooled features (`head`: its safetensors file, `weight` [num_classes, dim] and `bias`)
    "probes": pa.schema([
        ("key", _str), ("model", _str), ("zoo", _str), ("dataset", _str), ("recipe", _str),
        ("num_classes", _i32), ("dim", _i32), ("train_samples", _i32), ("eval_samples", _i32),
        ("train_top1", _f64), ("eval_top1", _f64), ("seconds", _f64), ("head", _str),
    ]),
    # ... per-model transferability scores on a split ...
    "model_predictors": pa.schema([
        ("model", _str), ("dataset", _str), ("split", _str), ("samples", _i32), ("dim", _i32),
        ("top1", _f64), ("tmi", _f64), ("logme", _f64), ("hscore", _f64), ("leep", _f64),
        ("nce", _f64),
    ]),
    # ... per-pair scores ...
    "pair_predictors": pa.schema([
        ("teacher", _str), ("student", _str), ("dataset", _str), ("split", _str),
        ("samples", _i32), ("cka_samples", _i32), ("cka", _f64), ("kappa", _f64),
        ("leep_err", _f64), ("nce_err", _f64),
    ]),
    # ... and teacher sets for a student (greedy, random, accuracy-sorted) with their coverage
    "teacher_sets": pa.schema([
        ("dataset", _str), ("split", _str), ("student", _str), ("k", _i32), ("strategy", _str),
        ("teachers", _str), ("coverage", _f64), ("redundancy", _f64), ("score", _f64),
        ("oracle_acc", _f64), ("lam", _f64), ("draws", _i32),
    ]),
    # class-name semantics (benchmark/semantics/, `ktbench similarity`): each class's name and
    # its L2-normalised text embedding under an encoder and its weights ...
    "class_embeddings": pa.schema([
        ("dataset", _str), ("encoder", _str), ("weights", _str), ("class", _i32), ("name", _str),
        ("embedding", pa.list_(_f32)),
    ]),
    # ... and per pair and top-p%: the classes holding p% of the positive flips, their share of
    # the flips, the mean and max pairwise cosine similarity of their names, and random class
    # sets of the same size (draws seeded by `seed`) for comparison
    "pair_similarity": pa.schema([
        ("teacher", _str), ("student", _str), ("dataset", _str), ("compat", _str),
        ("encoder", _str), ("weights", _str), ("p", _i32), ("classes", _i32),
        ("flip_share", _f64), ("mean_sim", _f64), ("max_sim", _f64), ("random_mean_sim", _f64),
        ("random_max_sim", _f64), ("mean_sim_rank", _f64), ("draws", _i32), ("seed", _i64),
    ]),
    # a unit of any stage that failed (`benchmark.units.dispatch.record_failure`): what it was,
    # the first line of its error (what a launch prints) and the whole traceback; a later run
    # that succeeds leaves its result beside this row (the table is the failures' history)
    "unit_failures": pa.schema([
        ("stage", _str), ("key", _str), ("dataset", _str), ("unit", _str), ("message", _str),
        ("error", _str), ("job_id", _str), ("host", _str), ("code_version", _str),
        ("failed_at", pa.timestamp("us", tz="UTC")),
    ]),
}

# columns appended to a table after its first release, at the end of its schema and in the order
# they came: parts written before lack the newest ones (the views give NULLs there) and are still
# valid (`valid_columns`)
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "models": ("crop_pct", "interpolation"),
    "pair_stats": ("teacher_key", "student_key"),
    "transfer_epochs": tuple(TRANSFER_RATES),
    "transfer_runs": ("batch_size", "oom_retries", "disk_bytes", *TRANSFER_RATES)}

# a table's compacted files (results.compact) are `<table>/compacted-<generation>-<id>.parquet`;
# no part may take a name with this prefix
COMPACTED_PREFIX = "compacted-"


def valid_columns(table: str) -> list[list[str]]:
    """The column lists a file of `table` may have: the schema's, or the schema's without the
    last few added columns (a file written before they existed)."""
    names = TABLES[table].names
    first = len(names) - len(ADDED_COLUMNS.get(table, ()))
    return [names[:n] for n in range(first, len(names) + 1)]

TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "models": ("model", "dataset"),
    "predictions": ("model", "dataset", "sample"),
    "pair_stats": ("teacher", "student", "dataset", "compat"),
    "class_flips": ("teacher", "student", "dataset", "class"),
    "transfer_epochs": ("key", "epoch"),
    "transfer_runs": ("key",),
    "features": ("key", "split"),
    "probes": ("key",),
    "model_predictors": ("model", "dataset", "split"),
    "pair_predictors": ("teacher", "student", "dataset", "split"),
    "teacher_sets": ("dataset", "split", "student", "k", "strategy"),
    "class_embeddings": ("dataset", "encoder", "weights", "class"),
    "pair_similarity": ("teacher", "student", "dataset", "compat", "encoder", "weights", "p"),
    "unit_failures": ("stage", "key"),
}
