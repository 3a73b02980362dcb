"""What is left to run of a plan: per stage, the units without a complete result.

"Done" is the stages' answer (`benchmark.units.unit.Stage`), read from the columns it needs of
the three tables that mark units done; no torch is imported, so `ktbench status` and
`plan --dry-run` stay quick on a folder of 10^5 units.
"""
import pandas as pd

from benchmark.units.unit import (PREDICT, PROBE, STATS, TRANSFER, PredictUnit, ProbeUnit,
                                  StatsUnit, pair_id, transfer_units)
from pairs.keys import unit_key
from pairs.plan import Plan


def pending_units(plan: Plan | pd.DataFrame, results_dir, retry_failed: bool = False,
                  busy=None) -> dict[str, list]:
    """The units of each stage that have no complete result yet, leaving out the unit ids in
    `busy` (stage -> ids held by live jobs, see `benchmark.launch.submissions`)."""
    busy = {stage: set(ids) for stage, ids in (busy or {}).items()}
    plan = Plan.of(plan)
    zoo, dataset = plan.zoo, plan.dataset
    pairs = plan.pairs     # every teacher of multi-teacher units too
    entries = {m.name: m for m in zoo.models}
    predict = [PredictUnit.of(zoo, entries.get(n) or zoo.get(n)) for n in plan.models]

    # a pair's statistics are done when computed from its models' current predictions
    keys = {u.model: u.key for u in predict}
    skip = STATS.done_ids(results_dir, dataset) | busy.get("stats", set())
    ids = pd.Series(list(map(pair_id, pairs["teacher"], pairs["student"], pairs["compat"],
                             pairs["teacher"].map(keys), pairs["student"].map(keys))),
                    index=pairs.index)
    missing = pairs[~ids.isin(skip)]
    stats = []
    for compat, group in missing.groupby("compat"):
        todo = tuple(sorted(zip(group["teacher"], group["student"])))
        read = tuple(sorted((name, keys[name]) for name in {n for pair in todo for n in pair}))
        stats.append(StatsUnit(unit_key("stats", pairs=todo, dataset=dataset, compat=compat,
                                        predict=sorted(u.key for u in predict)),
                               zoo.name, dataset, compat, todo, read))

    skip = (TRANSFER.done_ids(results_dir, dataset, failed_done=not retry_failed)
            | busy.get("transfer", set()))
    # multi-teacher units last: a soup then finds its single-teacher runs done; by teacher, then
    # student, so that a task's units share frozen models (benchmark.units.group)
    rows = plan.rows
    todo = rows[~rows["key"].astype(object).isin(skip)]    # hashed: arrow strings' isin loops
    todo = todo.assign(_multi=todo["mode"].astype(bool))
    transfer = transfer_units(todo.sort_values(["_multi", "teacher", "student", "key"]))

    skip = PREDICT.done_ids(results_dir, dataset) | busy.get("predict", set())
    # a probed zoo's models first get their heads (pairs.probe)
    probe = [ProbeUnit.of(zoo, entries[n]) for n in plan.models if entries[n].probe is not None]
    probe_skip = (PROBE.done_ids(results_dir, dataset) | busy.get("probe", set())
                  if probe else set())      # an unprobed plan reads no probes
    return {"probe": [u for u in probe if u.key not in probe_skip],
            "predict": [u for u in predict if u.key not in skip],
            "stats": stats, "transfer": transfer}
