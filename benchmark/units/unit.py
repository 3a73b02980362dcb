"""The units of work, one frozen type per stage, and the stages that say when a unit is done.

A unit owns its key (the name of every part it writes), its ids (what a launch manifest records
and what "done" is decided on: its key, or one id per pair of a stats unit) and, for transfer,
the row its run leaves in `transfer_runs`. How a launch runs its units (`RunOptions`: strict
top-1, trackers, which students to keep) travels beside them to each task, never inside them.

A `Stage` names the tables its units write, the last of them the mark of completion, and is the
one place that reads which units are done: the launch's pending units, a task's skipped units,
`ktbench status` and the launcher's progress bar all ask it. Light at import (no torch, no
pandas): units are built by `plan --dry-run` and `ktbench status` too, and pickled to tasks.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable

from benchmark.version import code_version
from pairs.plan import PLAN_COLUMNS, predict_key
from results import TABLES, ResultsLayout, query, table_dir

if TYPE_CHECKING:
    import pandas as pd

    from pairs.catalog import ModelEntry, Zoo

PAIR_ID_SEPARATOR = "|"


def pair_id(teacher: str, student: str, compat: str, teacher_key: str, student_key: str) -> str:
    """The id of one pair of a stats unit (launch manifests record these): its names and the
    predict keys of the two models' predictions, so statistics computed from other predictions
    (a catalog row edited since) are not the pair's."""
    return PAIR_ID_SEPARATOR.join((teacher, student, compat, teacher_key, student_key))


def _keys_in(table: str) -> Callable:
    """Ids of a table whose part names are unit keys: the keys of its rows (with `statuses`:
    of its rows with one of those statuses)."""
    def read(results_dir, dataset: str, statuses: tuple[str, ...] | None) -> set[str]:
        if statuses is None:
            return set(query(results_dir, f"SELECT DISTINCT key FROM {table}")["key"])
        return set(query(results_dir, f"SELECT key FROM {table} WHERE list_contains(?, status)",
                         [list(statuses)])["key"])
    return read


def _pair_ids(results_dir, dataset: str, statuses: None) -> set[str]:
    """Ids of the pairs with statistics on `dataset` (a stats unit's part covers many pairs);
    a row from before the predict keys were recorded has empty ones: no pair's id, computed
    again once."""
    rows = query(results_dir, "SELECT DISTINCT teacher, student, compat, "
                              "coalesce(teacher_key, '') AS teacher_key, "
                              "coalesce(student_key, '') AS student_key "
                              "FROM pair_stats WHERE dataset = ?", [dataset])
    return set(map(pair_id, rows["teacher"], rows["student"], rows["compat"], rows["teacher_key"],
                   rows["student_key"]))


def _probes_with_heads(results_dir, dataset: str, statuses: None) -> set[str]:
    """Ids of the probes with a `probes` row and their head file in the results folder: a probe
    whose head `verify --fix` moved aside (or an older version wrote to the cache) runs again."""
    layout = ResultsLayout(results_dir)
    return {key for key in _keys_in("probes")(results_dir, dataset, statuses)
            if layout.probe_head(key).is_file()}


@dataclass(frozen=True)
class Stage:
    """A kind of unit: the tables it writes (its mark of completion last) and which of the
    mark's rows say "done"."""
    name: str
    tables: tuple[str, ...]
    marked_ids: Callable        # (results_dir, dataset, statuses or None) -> ids with a mark
    finished: tuple[str, ...] = ()   # mark statuses that are done (none: any mark is)
    failed: tuple[str, ...] = ()     # mark statuses a launch retries only when asked
    needs: tuple[str, ...] = ()      # stages whose results its units read (a launch runs it
    #                                  only when one of their units it ran succeeded)

    @property
    def mark(self) -> str:
        return self.tables[-1]

    def done_ids(self, results_dir, dataset: str, failed_done: bool = False) -> set[str]:
        """Ids of this stage's units with a complete result; `failed_done`: a unit whose last
        run failed counts as done too (a launch without `--retry-failed`)."""
        if not self.finished:
            return self.marked_ids(results_dir, dataset, None)
        statuses = self.finished + (self.failed if failed_done else ())
        return self.marked_ids(results_dir, dataset, statuses)

    def failed_ids(self, results_dir, dataset: str) -> set[str]:
        """Ids of this stage's units whose last run failed."""
        return self.marked_ids(results_dir, dataset, self.failed) if self.failed else set()

    def set_aside(self, results_dir, key: str) -> None:
        """Move the parts unit `key` wrote to `quarantine/superseded/<table>/`: a unit of
        another key now holds their natural keys, and the views order parts by name, not by
        age, so an old part could win over the new one (a compacted copy needs nothing: a part
        beats it)."""
        for table in self.tables:
            part = table_dir(results_dir, table) / f"{key}.parquet"
            if part.is_file():
                target = ResultsLayout(results_dir).quarantine("superseded") / table / part.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, target)

    def part_shows(self, results_dir, key: str) -> bool:
        """Whether the mark's part named `key` is on disk: the cheap poll of a running stage
        (a unit that finished or failed since the last compaction)."""
        return (table_dir(results_dir, self.mark) / f"{key}.parquet").is_file()


PREDICT = Stage("predict", ("predictions", "models"), _keys_in("models"), needs=("probe",))
STATS = Stage("stats", ("class_flips", "pair_stats"), _pair_ids, needs=("predict",))
TRANSFER = Stage("transfer", ("transfer_epochs", "transfer_runs"), _keys_in("transfer_runs"),
                 finished=("ok", "diverged"), failed=("failed",), needs=("predict",))
FEATURES = Stage("features", ("features",), _keys_in("features"))
PROBE = Stage("probe", ("probes",), _probes_with_heads)
# the stages a launch runs, in order, by name
STAGES = {stage.name: stage for stage in (PROBE, PREDICT, STATS, TRANSFER)}


@dataclass(frozen=True)
class ProbeUnit:
    """A linear head fitted on one frozen model's pooled features on another dataset
    (`pairs.probe`): `zoo` is the probed zoo, `key` the probe's (`pairs.probe.probe_key`)."""
    key: str
    zoo: str
    dataset: str
    model: str
    recipe: str
    stage: ClassVar[Stage] = PROBE

    @classmethod
    def of(cls, zoo: Zoo, entry: ModelEntry) -> ProbeUnit:
        """The probe unit of a probed zoo's model."""
        return cls(entry.probe["key"], zoo.name, zoo.dataset, entry.name, entry.probe["recipe"])

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.key,)


@dataclass(frozen=True)
class PredictUnit:
    """One model's eval predictions on a dataset."""
    key: str
    zoo: str
    dataset: str
    model: str
    stage: ClassVar[Stage] = PREDICT

    @classmethod
    def of(cls, zoo: Zoo, entry: ModelEntry) -> PredictUnit:
        """The predict unit of a zoo's model."""
        return cls(predict_key(entry, zoo.dataset), zoo.name, zoo.dataset, entry.name)

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.key,)

    def superseded_keys(self, results_dir) -> list[str]:
        """Keys of the model's predict units of other keys whose rows the views show (an
        earlier version of its catalog row)."""
        return query(results_dir, "SELECT key FROM models WHERE model = ? AND dataset = ? AND "
                                  "key != ?", [self.model, self.dataset, self.key])["key"].tolist()


@dataclass(frozen=True)
class StatsUnit:
    """Complementary knowledge of many (teacher, student) pairs at once, under one compat, from
    the predictions of the predict keys `predict_keys` ((model, key) of each model it reads)."""
    key: str
    zoo: str
    dataset: str
    compat: str
    pairs: tuple[tuple[str, str], ...]
    predict_keys: tuple[tuple[str, str], ...]
    stage: ClassVar[Stage] = STATS

    @property
    def ids(self) -> tuple[str, ...]:
        keys = dict(self.predict_keys)
        return tuple(pair_id(t, s, self.compat, keys[t], keys[s]) for t, s in self.pairs)


@dataclass(frozen=True)
class FeaturesUnit:
    """One model's pooled features and logits on the eval split and part of the transfer split."""
    key: str
    zoo: str
    dataset: str
    model: str
    eval_samples: int | None
    transfer_samples: int
    stage: ClassVar[Stage] = FEATURES

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.key,)


@dataclass(frozen=True)
class TransferUnit:
    """One planned training run: a plan row (`pairs.plan.PLAN_COLUMNS`). A multi-teacher unit
    has a `mode` and its ordered `teachers`; a single-teacher unit's `teachers` is its teacher."""
    plan: str
    key: str
    zoo: str
    dataset: str
    teacher: str
    student: str
    method: str
    params: str              # the resolved params as planned (JSON: the key hashes this text)
    seed: int
    compat: str = ""
    teachers: str = ""
    mode: str = ""
    stage: ClassVar[Stage] = TRANSFER

    @classmethod
    def from_row(cls, row) -> TransferUnit:
        """The unit of a plan row (a mapping with the plan's columns)."""
        fields = {name: row[name] for name in PLAN_COLUMNS}
        return cls(**{**fields, "seed": int(fields["seed"]), "compat": fields["compat"] or "",
                      "teachers": fields["teachers"] or fields["teacher"],
                      "mode": fields["mode"] or ""})

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.key,)

    @property
    def teacher_names(self) -> list[str]:
        """The teachers in plan order."""
        return [t for t in self.teachers.split(",") if t]

    @property
    def multi(self) -> bool:
        return bool(self.mode)

    def params_dict(self) -> dict:
        return json.loads(self.params)

    def run_row(self, status: str, *, job_id: str, started_at, finished_at, disk_bytes: int,
                **measured) -> dict:
        """The unit's `transfer_runs` row (the mark of completion), finished or failed; what the
        run `measured` (epochs, accuracies, metrics, error, wall time, batch) fills the rest,
        and a column it does not name stays null."""
        row = dict.fromkeys(TABLES["transfer_runs"].names)
        row.update({name: getattr(self, name) for name in
                    ("key", "plan", "teacher", "student", "method", "params", "seed", "dataset",
                     "compat", "mode")},
                   teachers=",".join(self.teacher_names), status=status, job_id=job_id,
                   host=socket.gethostname(), code_version=code_version(),
                   started_at=started_at, finished_at=finished_at, disk_bytes=disk_bytes,
                   **measured)
        return row


def transfer_units(plan: pd.DataFrame) -> list[TransferUnit]:
    """The plan's rows as units, in the plan's order."""
    return [TransferUnit.from_row(row) for row in plan[PLAN_COLUMNS].to_dict("records")]


Unit = PredictUnit | StatsUnit | TransferUnit | FeaturesUnit | ProbeUnit


def not_done(units: Iterable[Unit], results_dir, failed_done: bool = False) -> list[Unit]:
    """The units without a complete result (a unit is done when each of its ids is)."""
    done: dict[tuple[str, str], set[str]] = {}
    left = []
    for unit in units:
        where = (unit.stage.name, unit.dataset)
        if where not in done:
            done[where] = unit.stage.done_ids(results_dir, unit.dataset, failed_done)
        if not done[where].issuperset(unit.ids):
            left.append(unit)
    return left


@dataclass(frozen=True)
class RunOptions:
    """How a launch runs its units, not what they compute: handed to each task beside its units
    (`launch --strict-top1 --log --keep-students`)."""
    strict_top1: bool = False            # a model > 5 points off its reported top-1 fails
    log: tuple[str, ...] = ()            # trackers mirroring transfer epochs
    log_dir: str | None = None           # ... their folder (default <results>/trackers)
    keep_students: frozenset[str] = frozenset()   # keys of the units that keep their student

    def keeps(self, unit: TransferUnit) -> bool:
        return unit.key in self.keep_students

    def keeping(self, unit: TransferUnit) -> RunOptions:
        """These options, with `unit` keeping its final student too."""
        return dataclasses.replace(self, keep_students=self.keep_students | {unit.key})

    def for_task(self, units: Iterable[Unit]) -> RunOptions:
        """These options as one task needs them: the kept students of its own units only."""
        return dataclasses.replace(self, keep_students=frozenset(
            u.key for u in units if u.key in self.keep_students))

    @property
    def tracker_dir(self) -> Path:
        return Path(self.log_dir or "trackers")
