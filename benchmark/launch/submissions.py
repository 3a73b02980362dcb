"""Which units went to which job: one JSON manifest per submitted stage.

Manifests live in `<results>/jobs/launches/`, beside submitit's job folders. A relaunch and
`ktbench status` read them to tell the units held by a live job (queued, running or requeued)
from the units no job holds any more. A local job is its process: the manifest records the
process's start time beside its id, so a later process that got the same id, or the job's own
zombie, is not taken for the job.
"""
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from results.layout import ResultsLayout
from results.store import atomic_path


def jobs_dir(results_dir) -> Path:
    """submitit's folder: one subfolder per job (`%j`)."""
    return ResultsLayout(results_dir).jobs


def remove_stray_job_folder(results_dir) -> None:
    """submitit's local job controller creates its folder pattern verbatim (`jobs/%j`) beside
    the real job folders; the empty stray is removed (a controller still starting may make it
    again, empty)."""
    try:
        (jobs_dir(results_dir) / "%j").rmdir()
    except OSError:      # absent, or (never seen) not empty: leave it
        pass


def _manifests_dir(results_dir) -> Path:
    return ResultsLayout(results_dir).launches


def record_submission(results_dir, executor: str, stage: str, job_ids: list[str],
                      tasks: list[list]) -> Path:
    """Write the manifest of one stage's submission, atomically; names sort by time."""
    manifest = {"executor": executor, "stage": stage, "submitted_at": time.time(),
                "tasks": {job_id: [i for unit in task for i in unit.ids]
                          for job_id, task in zip(job_ids, tasks)}}
    if executor == "local":
        manifest["started"] = {job_id: process_start(job_id) for job_id in job_ids}
    final = _manifests_dir(results_dir) / f"{time.time_ns()}-{stage}-{uuid.uuid4().hex[:8]}.json"
    with atomic_path(final) as tmp:
        tmp.write_text(json.dumps(manifest))
    return final


def _slurm_live(job_ids, results_dir, attempts: int = 3) -> set[str]:
    """Jobs SLURM still knows as queued, running, requeued or completing (`squeue`). Without
    SLURM client commands none is live; a controller that does not answer is an error (taking
    its jobs for ended would end a wait early or submit their units twice)."""
    for attempt in range(attempts):
        try:
            out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True,
                                 text=True, timeout=60, check=True).stdout
            return set(job_ids) & set(out.split())
        except FileNotFoundError:
            return set()
        except subprocess.SubprocessError as e:
            error = e
            time.sleep(1 + attempt)
    raise RuntimeError(f"squeue failed {attempts} times, cannot tell which jobs are live: "
                       f"{getattr(error, 'stderr', '') or error}")


def _proc_stat(pid: str) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a process from /proc; None when there
    is no such process."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (ValueError, OSError):
        return None
    return fields[0], int(fields[19])


def process_start(pid: str) -> int | None:
    """When process `pid` started (clock ticks since boot), or None."""
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def _local_live(jobs, results_dir) -> set[str]:
    """Local jobs (job id = process id; `jobs` maps each to its recorded start time, or is a
    set of ids) whose process runs, is not a zombie, started when the job did, and has left no
    result yet. Without /proc, a process that exists counts."""
    started = jobs if isinstance(jobs, dict) else dict.fromkeys(jobs)
    proc = os.path.isdir("/proc/self")
    live = set()
    for job_id, start in started.items():
        if any((jobs_dir(results_dir) / job_id).glob("*_result.pkl")):
            continue
        if proc:
            stat = _proc_stat(job_id)
            if stat is None or stat[0] in ("Z", "X") or start not in (None, stat[1]):
                continue
        else:
            try:
                os.kill(int(job_id), 0)
            except (ValueError, ProcessLookupError, PermissionError):
                continue
        live.add(job_id)
    return live


# executor -> (job ids, or job id -> recorded start; results folder) -> the live ones; debug
# jobs end with their launcher
LIVE_JOBS = {"slurm": _slurm_live, "local": _local_live, "debug": lambda jobs, _: set()}


def live_units(results_dir) -> dict[str, dict[str, str]]:
    """Per stage, unit id -> the live job holding it (the job of its latest submission)."""
    latest: dict[tuple[str, str], tuple[str, str]] = {}    # (stage, id) -> (executor, job)
    started: dict[str, dict[str, int | None]] = {}         # executor -> job -> start
    for path in sorted(_manifests_dir(results_dir).glob("*.json")):
        manifest = json.loads(path.read_text())
        for job_id, ids in manifest["tasks"].items():
            started.setdefault(manifest["executor"], {})[job_id] = \
                manifest.get("started", {}).get(job_id)
            for unit_id in ids:
                latest[(manifest["stage"], unit_id)] = (manifest["executor"], job_id)
    by_executor: dict[str, dict[str, int | None]] = {}
    for executor, job_id in set(latest.values()):
        by_executor.setdefault(executor, {})[job_id] = started[executor][job_id]
    live = {(executor, job_id) for executor, jobs in by_executor.items()
            for job_id in LIVE_JOBS[executor](jobs, results_dir)}
    units: dict[str, dict[str, str]] = {}
    for (stage, unit_id), job in latest.items():
        if job in live:
            units.setdefault(stage, {})[unit_id] = job[1]
    return units


def live_unit_ids(results_dir) -> dict[str, set[str]]:
    """Per stage, the unit ids held by a live job (`live_units` without the jobs)."""
    return {stage: set(ids) for stage, ids in live_units(results_dir).items()}
