"""What is left to run of a plan: per stage, the units without a complete result.

Reads only the columns it needs of the three tables that mark units done (`models.key`,
`pair_stats` pairs, `transfer_runs` key and status) and imports no torch, so `ktbench status`
and `plan --dry-run` stay quick on a folder of 10^5 units.
"""
import pandas as pd

from benchmark.launch.submissions import pair_id
from pairs.catalog import get_zoo
from pairs.keys import unit_key
from pairs.plan import PlanError, predict_key, teacher_student_pairs
from results import query

STAGES = ("predict", "stats", "transfer")
# the table whose part named by a unit's key marks that unit as done
DONE_TABLE = {"predict": "models", "stats": "pair_stats", "transfer": "transfer_runs"}
# the tables each stage writes (its mark of completion last)
STAGE_TABLES = {"predict": ("predictions", "models"), "stats": ("class_flips", "pair_stats"),
                "transfer": ("transfer_epochs", "transfer_runs")}
FINISHED = ("ok", "diverged")          # transfer statuses never run again


def zoo_of(plan: pd.DataFrame):
    zoos = plan["zoo"].unique()
    if len(zoos) != 1:
        raise PlanError(f"a plan must use one zoo, this one uses {', '.join(zoos)}")
    zoo = get_zoo(zoos[0])
    if other := sorted(set(plan["dataset"]) - {zoo.dataset}):
        raise PlanError(f"the plan is for dataset {other[0]!r}, zoo {zoo.name!r} now reads "
                        f"{zoo.dataset!r} (its environment changed since the plan was made?)")
    return zoo


def pending_units(plan: pd.DataFrame, results_dir, retry_failed: bool = False,
                  busy=None) -> dict[str, list]:
    """The units of each stage that have no complete result yet, leaving out the unit ids in
    `busy` (stage -> ids held by live jobs, see `benchmark.launch.submissions`)."""
    busy = {stage: set(ids) for stage, ids in (busy or {}).items()}
    zoo = zoo_of(plan)
    dataset = zoo.dataset
    pairs = teacher_student_pairs(plan)     # every teacher of multi-teacher units too
    names = sorted(set(pairs["teacher"]) | set(pairs["student"]))
    entries = {m.name: m for m in zoo.models}
    predict = [{"stage": "predict", "key": predict_key(entries.get(n) or zoo.get(n), dataset),
                "zoo": zoo.name, "dataset": dataset, "model": n} for n in names]
    done_predict = set(query(results_dir, "SELECT key FROM models")["key"])
    have_stats = query(results_dir, "SELECT DISTINCT teacher, student, compat FROM pair_stats "
                       "WHERE dataset = ?", [dataset])
    finished = FINISHED if retry_failed else FINISHED + ("failed",)
    done_runs = set(query(results_dir, "SELECT key FROM transfer_runs WHERE list_contains(?, "
                          "status)", [list(finished)])["key"])

    missing = pairs.merge(have_stats, how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    ids = [pair_id(t, s, c) for t, s, c in zip(missing["teacher"], missing["student"],
                                               missing["compat"])]
    missing = missing[~pd.Series(ids, index=missing.index).isin(busy.get("stats", ()))]
    stats = []
    for compat, group in missing.groupby("compat"):
        todo = sorted(zip(group["teacher"], group["student"]))
        stats.append({"stage": "stats", "zoo": zoo.name, "dataset": dataset, "compat": compat,
                      "pairs": todo, "key": unit_key(
                          "stats", pairs=todo, dataset=dataset, compat=compat,
                          predict=sorted(u["key"] for u in predict))})
    skip = done_runs | busy.get("transfer", set())
    # multi-teacher units last: a soup then finds its single-teacher runs done; by teacher, then
    # student, so that a task's units share frozen models (benchmark.units.group)
    todo = plan[~plan["key"].astype(object).isin(skip)]    # hashed: arrow strings' isin loops
    todo = todo.assign(_multi=todo["mode"].astype(bool))
    transfer = [dict(row, stage="transfer") for row in
                todo.sort_values(["_multi", "teacher", "student", "key"]).drop(columns="_multi")
                .to_dict("records")]
    skip_predict = done_predict | busy.get("predict", set())
    return {"predict": [u for u in predict if u["key"] not in skip_predict],
            "stats": stats, "transfer": transfer}
