"""Which tables there are: their names, in the order of the report, and their SQL files.

Light at import (no pandas): the command line lists the names when it builds its arguments.
"""
from pathlib import Path

from results.errors import InputError

SQL_DIR = Path(__file__).parent / "sql"
# In the order of the report: the paper's transfer results, then complementary knowledge, then
# where transfer lands, then bookkeeping.
TABLE_NAMES = (
    "success_rate", "success_rate_by_family", "success_rate_per_student",
    "success_rate_by_dataset", "methods_vs_controls",
    "gain_over_controls", "seed_spread", "paper_reference",
    "full_imagenet", "gain_size", "delta_by_ts_diff", "delta_by_ts_diff_curve", "correlations",
    "matched_students", "matched_students_by_property", "knowledge_gain_loss", "dp_supervision",
    "multi_teacher", "multi_teacher_vs_teachers", "multi_teacher_epochs", "pair_deltas",
    "complementary_knowledge", "complementary_knowledge_by_ts_diff", "random_init_flips",
    "class_concentration", "class_similarity",
    "transfer_rate_by_top_classes", "transfer_rate_by_student_params",
    "predictors_teacher_sets",
    "probes", "model_accuracy", "run_status", "runs_not_ok", "provenance",
)


def sql_path(name: str) -> Path:
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise InputError(f"no table {name!r}; tables: {', '.join(TABLE_NAMES)}")
    return path


def sql_text(name: str) -> str:
    return sql_path(name).read_text()
