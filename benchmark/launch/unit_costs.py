"""What the launcher packs by: each pending unit's estimated cost (the cost model of `plan
--dry-run`, `pairs.cost`) and the group of units it shares work with (`packing` keeps a group in
one task where it can).

Probe and predict units are one model's passes each, alone. Transfer units group as a task holding them
all would train them in lockstep (`benchmark.units.group.lockstep_groups`), and each pays its
training and its share of its group's frozen passes. Model sizes come from the zoo's catalog,
else from the `models` table (the micro zoo's sizes are measured by predict).
"""
import dataclasses

import pandas as pd

from benchmark.units.group import frozen_models, lockstep_groups
from benchmark.units.unit import PredictUnit, ProbeUnit, TransferUnit
from pairs.catalog import get_zoo
from pairs.catalog_table import measured_catalog
from pairs.cost import predict_seconds, probe_seconds, transfer_seconds


def _rows(units: list) -> pd.DataFrame:
    return pd.DataFrame([dataclasses.asdict(u) for u in units])


def _one_pass_costs(seconds):
    """Costs of units that are one model's passes each, alone (`seconds`: pairs.cost's)."""
    def costs(units: list[PredictUnit] | list[ProbeUnit], results_dir):
        rows = _rows(units)
        catalog = measured_catalog(get_zoo(units[0].zoo), results_dir)
        return seconds(rows, catalog, rows["model"]).tolist(), rows["key"].tolist()
    return costs


def _transfer_costs(units: list[TransferUnit], results_dir) -> tuple[list[float], list]:
    group_of = {u.key: g for g, group in enumerate(lockstep_groups(units, results_dir))
                for u in group}
    rows = _rows(units)
    frozen = pd.Series([frozen_models(u) for u in units], index=rows.index)
    groups = rows["key"].map(group_of)
    catalog = measured_catalog(get_zoo(units[0].zoo), results_dir)
    return transfer_seconds(rows, catalog, frozen, groups).tolist(), groups.tolist()


# stage -> its units' (costs, group ids); stats runs as one task and needs none
_COSTS = {"probe": _one_pass_costs(probe_seconds), "predict": _one_pass_costs(predict_seconds),
          "transfer": _transfer_costs}


def unit_costs(stage: str, units: list, results_dir) -> tuple[list[float], list]:
    """(estimated GPU-seconds, group id) of each of a stage's units, in their order."""
    return _COSTS[stage](units, results_dir)
