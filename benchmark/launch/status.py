"""Where a plan stands: done / running / pending / failed units per stage.

done: a complete result in Parquet. running: held by a live job (queued, running or requeued;
from the launch manifests and the executor). failed: a transfer unit whose last run failed
(retried with `--retry-failed`). pending: the rest, what a relaunch submits (a predict or stats
unit that failed leaves no result, so it shows as pending; its `unit_failures` row says why).
"""
import time

import pandas as pd
from tqdm.auto import tqdm

from benchmark.launch.pending import pending_units
from benchmark.launch.submissions import live_unit_ids
from benchmark.units.unit import STAGES
from pairs.plan import Plan
from pairs.probe import is_probed

STATUS_COLUMNS = ["done", "running", "pending", "failed"]


def plan_status(plan: Plan | pd.DataFrame, results_dir) -> pd.DataFrame:
    """One row per stage (probe and predict count models, stats counts pairs, transfer counts
    units; a probe row only when the plan's zoo is probed onto another dataset)."""
    plan = Plan.of(plan)
    totals = {"probe": len(plan.models), "predict": len(plan.models), "stats": len(plan.pairs), "transfer": len(plan)}
    # live jobs first: a job that ends between the two reads has written its results before
    live = live_unit_ids(results_dir)
    unfinished = pending_units(plan, results_dir, retry_failed=True)
    rows = {}
    for stage in STAGES.values():
        if stage.name == "probe" and not is_probed(plan.zoo.name):
            continue
        ids = {i for unit in unfinished[stage.name] for i in unit.ids}
        running = ids & live.get(stage.name, set())
        failed = (ids - running) & stage.failed_ids(results_dir, plan.dataset)
        rows[stage.name] = {"done": totals[stage.name] - len(ids), "running": len(running),
                            "pending": len(ids - running - failed), "failed": len(failed)}
    return pd.DataFrame.from_dict(rows, orient="index")[STATUS_COLUMNS]


def wait_for_plan(plan: Plan | pd.DataFrame, results_dir, poll_s: float = 2.0,
                  progress: bool = True) -> pd.DataFrame:
    """Poll until no live job holds a unit of `plan`; a bar counts finished (done or failed)
    units over all stages. Returns the final status."""
    plan = Plan.of(plan)
    status = plan_status(plan, results_dir)
    total = int(status.to_numpy().sum())
    with tqdm(total=total, desc="plan", unit="unit", disable=not progress) as bar:
        while True:
            finished = int(status["done"].sum() + status["failed"].sum())
            bar.update(finished - bar.n)
            if status["running"].sum() == 0:
                return status
            time.sleep(poll_s)
            status = plan_status(plan, results_dir)
