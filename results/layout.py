"""The map of a results folder: where each thing in it lives, named here once so that no room
spells a folder of it.

    <results>/<table>/                      Parquet parts of each table (`results.schema`)
    <results>/checkpoints/<key>.pt          a transfer unit's state while it runs (resumed from)
    <results>/students/<key>.safetensors    a final student kept (`launch --keep-students`)
    <results>/feature_arrays/<key>/         a features unit's arrays (`benchmark.units.features`)
    <results>/probe_heads/<key>.safetensors a probe unit's fitted head (`benchmark.units.probe`)
    <results>/jobs/                         submitit's job folders; `jobs/launches/` the launch
                                            manifests (which job holds which unit)
    <results>/trackers/                     the trackers' folder (`launch --log`)
    <results>/plans/<name>.parquet          plans ktbench writes itself (`demo`, the scale bench)
    <results>/quarantine/<kind>/            files `verify --fix` moved aside
    <results>/figures/, report.html         `ktbench figures` and `report` by default
    <results>/benchmarks/                   `ktbench bench` figures
    <results>/.compact.lock                 held by a compaction
"""
from dataclasses import dataclass
from pathlib import Path

from results.errors import InputError
from results.schema import TABLES


@dataclass(frozen=True)
class ResultsLayout:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    def table(self, name: str) -> Path:
        if name not in TABLES:
            raise InputError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
        return self.root / name

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, key: str) -> Path:
        return self.checkpoints / f"{key}.pt"

    def student(self, key: str) -> Path:
        return self.root / "students" / f"{key}.safetensors"

    def feature_arrays(self, key: str) -> Path:
        return self.root / "feature_arrays" / key

    @property
    def probe_heads(self) -> Path:
        return self.root / "probe_heads"

    def probe_head(self, key: str) -> Path:
        return self.probe_heads / f"{key}.safetensors"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def launches(self) -> Path:
        return self.jobs / "launches"

    @property
    def trackers(self) -> Path:
        return self.root / "trackers"

    @property
    def plans(self) -> Path:
        return self.root / "plans"

    def plan(self, name: str) -> Path:
        return self.plans / f"{name}.parquet"

    def quarantine(self, kind: str) -> Path:
        return self.root / "quarantine" / kind

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def benchmarks(self) -> Path:
        return self.root / "benchmarks"

    @property
    def compact_lock(self) -> Path:
        return self.root / ".compact.lock"
