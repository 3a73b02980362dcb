"""The tables `ktbench zoo list|show` and `plan --dry-run` print: a zoo's catalog filtered by the
command line (`plan_args`), and the dry run's units, GPU-hours and disk per stage (pandas)."""
import pandas as pd

from benchmark.cli.plan_args import catalog_filter
from pairs import get_zoo, list_zoos
from pairs.catalog_table import CATALOG_COLUMNS, filter_catalog, measured_catalog
from pairs.cost import estimate_disk_bytes, estimate_gpu_hours
from pairs.plan import Plan
from pairs.probe import is_probed

SHOW_COLUMNS = ["name", "family", "params_m", "top1", "top5", "img_size", "test_img_size",
                "crop_pct", "interpolation", "num_classes", "label_offset", "weights"]


def models_table(zoo, args, results_dir) -> pd.DataFrame:
    """The zoo's catalog with measured top-1 and size from the results folder where the catalog
    has none, filtered by the command line."""
    return filter_catalog(measured_catalog(zoo, results_dir), catalog_filter(args))


def zoos_table() -> pd.DataFrame:
    rows = []
    for name in list_zoos():
        zoo = get_zoo(name)
        families = pd.Series([m.family for m in zoo.models]).value_counts()
        rows.append({"zoo": name, "dataset": zoo.dataset, "models": len(zoo.models),
                     "families": ", ".join(f"{f} {n}" for f, n in families.items())})
    return pd.DataFrame(rows)


def show_table(table: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Every catalog column as CSV; for reading, the informative ones that are not empty."""
    if fmt == "csv":
        return table[CATALOG_COLUMNS]
    return table[SHOW_COLUMNS].dropna(axis=1, how="all")


def kept_student_models(plan: Plan, policy: str) -> pd.Series:
    """The student model of every final student the plan keeps under `policy`
    (`launch --keep-students`): the units it marks, and the soups' ingredients."""
    kept = plan.rows[plan.rows["key"].isin(plan.kept_students(policy))]
    return pd.concat([kept, plan.soup_ingredients]).drop_duplicates("key")["student"]


def dry_run_summary(plan: Plan, table: pd.DataFrame, results_dir,
                    students: pd.Series) -> pd.DataFrame:
    """Units per stage, how many have no result yet in `results_dir`, estimated GPU-hours
    (transfer: units in lockstep groups, each frozen forward pass paid once per group) and
    disk, and a last row for the final students kept (`students`)."""
    from benchmark.launch.pending import pending_units
    from benchmark.units.group import frozen_models, plan_groups     # imports torch
    from benchmark.units.unit import transfer_units
    pending = pending_units(plan, results_dir)
    frozen = pd.Series([frozen_models(u) for u in transfer_units(plan.rows)],
                       index=plan.rows.index)
    hours = estimate_gpu_hours(plan, table, frozen, plan_groups(plan.rows, results_dir))
    disk = estimate_disk_bytes(plan, table, students)
    pairs = plan.pairs
    probe = [{"stage": "probe", "units": len(plan.models), "unit": "models",
              "pending": len(pending["probe"]), "gpu_hours": hours["probe"],
              "disk_gb": disk["probe"] / 1e9}] if is_probed(plan.zoo.name) else []
    return pd.DataFrame(probe + [
        {"stage": "predict", "units": len(plan.models),
         "unit": "models", "pending": len(pending["predict"]), "gpu_hours": hours["predict"],
         "disk_gb": disk["predict"] / 1e9},
        {"stage": "stats", "units": len(pairs),
         "unit": "pairs", "pending": sum(len(u.pairs) for u in pending["stats"]),
         "gpu_hours": hours["stats"], "disk_gb": disk["stats"] / 1e9},
        {"stage": "transfer", "units": len(plan), "unit": "runs",
         "pending": len(pending["transfer"]), "gpu_hours": hours["transfer"],
         "disk_gb": disk["transfer"] / 1e9},
        {"stage": "(kept)", "units": len(students), "unit": "students", "pending": None,
         "gpu_hours": 0.0, "disk_gb": disk["students"] / 1e9},
    ]).astype({"pending": "Int64"})
