"""The pre-flight a launch runs in a fresh process before it submits anything: what a job
process will see when it resolves the plan's zoo and dataset.

Local and SLURM jobs start fresh Python processes from the launcher's environment: a zoo that
only the launching process registered (a module it imported, a plugin not named in
`KTBENCH_PLUGINS`), or a dataset that resolves only there, would fail every unit of the
launch. Running `python -m benchmark.launch.preflight ZOO DATASET MODEL...` with that same
environment finds out in a second, with one line instead of a stage of failed jobs.
"""
import json
import os
import subprocess
import sys

from pairs.catalog import get_zoo
from pairs.plan import Plan
from results.errors import InputError


def job_view(zoo_name: str, dataset: str, models: list[str]) -> dict:
    """What a job process resolves: the zoo's dataset, the dataset's class count, and the
    fingerprint of each of `models`."""
    from benchmark.data import num_classes_of
    zoo = get_zoo(zoo_name)
    return {"dataset": zoo.dataset, "num_classes": num_classes_of(dataset),
            "fingerprints": {name: zoo.get(name).fingerprint() for name in models}}


def check_in_fresh_process(plan: Plan):
    """InputError (one line) unless a fresh process with this environment resolves the plan's
    zoo, dataset and models exactly as this one does."""
    zoo = plan.zoo
    argv = [sys.executable, "-m", __name__, zoo.name, zoo.dataset, *plan.models]
    done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ))
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise InputError(f"a job process cannot resolve zoo {zoo.name!r}: {lines[-1]} (a zoo "
                         "that needs code: name its module with --plugin or KTBENCH_PLUGINS)")
    seen = json.loads(done.stdout)
    mine = {name: zoo.get(name).fingerprint() for name in plan.models}
    if seen["dataset"] != zoo.dataset or seen["fingerprints"] != mine:
        changed = sorted(n for n in mine if seen["fingerprints"].get(n) != mine[n])
        raise InputError(f"a job process sees zoo {zoo.name!r} differently (dataset "
                         f"{seen['dataset']!r}; models changed: {', '.join(changed) or 'none'}): "
                         "set the same environment for the launch and its jobs")


def main(argv: list[str]) -> int:
    zoo_name, dataset, *models = argv
    try:
        print(json.dumps(job_view(zoo_name, dataset, models)))
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
