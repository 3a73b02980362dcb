"""Packing units into tasks by estimated cost (benchmark.launch.packing), on hand-made costs,
the launcher's tasks for a real plan and their threads."""
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.launch import launcher
from benchmark.launch.launcher import LaunchOptions, _tasks, _threads
from benchmark.launch.packing import pack_by_cost
from benchmark.launch.pending import pending_units
from benchmark.methods import resolve_params
from pairs import get_zoo
from pairs.plan import all_pairs, make_plan


def _loads(tasks, costs):
    return [sum(costs[i] for i in task) for task in tasks]


def _groups_of(tasks, groups):
    """group id -> the tasks (their positions) holding its items."""
    held = {}
    for t, task in enumerate(tasks):
        for i in task:
            held.setdefault(groups[i], set()).add(t)
    return held


def _check_partition(tasks, n_items, n_tasks):
    assert sorted(i for task in tasks for i in task) == list(range(n_items))
    assert all(task and task == sorted(task) for task in tasks)       # no empty task, in order
    assert len(tasks) <= n_tasks


# (costs, groups, tasks): groups of uneven sizes and costs, a dear single item, many cheap ones
CASES = [
    ([9, 1, 1, 1, 2, 2, 3, 3, 3, 0.5], "abbbccdddd", 2),
    ([5, 5, 5, 5, 1, 1, 1, 1, 1, 1, 1, 1], "aaaabbbbcccc", 3),
    ([0.3, 7, 0.3, 0.3, 2.5, 2.5, 2.5, 1, 1, 1, 4, 4], "abbbcccdddef", 4),
    ([1] * 20, "aaaaabbbbbcccccddddd", 3),
]


@pytest.mark.parametrize("costs, groups, n_tasks", CASES)
def test_tasks_balanced_within_the_largest_group(costs, groups, n_tasks):
    tasks = pack_by_cost(costs, list(groups), n_tasks)
    _check_partition(tasks, len(costs), n_tasks)
    largest = max(sum(c for c, g in zip(costs, groups) if g == group) for group in set(groups))
    loads = _loads(tasks, costs)
    assert max(loads) - min(loads) <= largest + 1e-9


def test_groups_stay_whole_when_whole_groups_fill_every_task():
    # four groups of cost 3 on two tasks: two whole groups each, longest (here: earliest) first
    costs, groups = [1] * 12, list("aaabbbcccddd")
    assert pack_by_cost(costs, groups, 2) == [[0, 1, 2, 6, 7, 8], [3, 4, 5, 9, 10, 11]]


def test_a_group_dearer_than_a_fair_share_is_cut_and_the_rest_stay_whole():
    # total 20 on two tasks, fair share 10: group a (16) cannot stay whole without an idle core;
    # b and c (2 each) can
    costs, groups = [4, 4, 4, 4, 1, 1, 1, 1], list("aaaabbcc")
    tasks = pack_by_cost(costs, groups, 2)
    assert _loads(tasks, costs) == [10, 10]
    held = _groups_of(tasks, groups)
    assert len(held["a"]) == 2 and len(held["b"]) == 1 and len(held["c"]) == 1


def test_whole_groups_are_cut_when_keeping_them_whole_idles_a_core():
    # three equal groups on two tasks: whole, one task would cost 6 and the other 3
    costs, groups = [1] * 9, list("aaabbbccc")
    tasks = pack_by_cost(costs, groups, 2)
    assert sorted(_loads(tasks, costs)) == [4, 5]       # 9 units of 1: as even as it gets


def test_same_input_same_tasks_whatever_the_group_names():
    costs, groups, n_tasks = CASES[2]
    first = pack_by_cost(costs, list(groups), n_tasks)
    assert pack_by_cost(costs, list(groups), n_tasks) == first
    renamed = [{"a": 10, "b": 3, "c": 7, "d": 0, "e": 99, "f": -1}[g] for g in groups]
    assert pack_by_cost(costs, renamed, n_tasks) == first


def test_empty_input_gives_no_tasks():
    assert pack_by_cost([], [], 4) == []


def test_more_tasks_than_groups():
    # two groups of two on eight tasks: at most one task per item, none empty
    assert pack_by_cost([1, 1, 1, 1], list("aabb"), 8) == [[0], [1], [2], [3]]
    # three single items on six tasks: three tasks
    assert pack_by_cost([5, 1, 1], list("abc"), 6) == [[0], [1], [2]]


def test_at_most_max_items_per_task():
    costs, groups = [3, 1, 1, 1, 1, 1, 1, 1, 2, 2], list("aaaaaaaabb")
    tasks = pack_by_cost(costs, groups, 1, max_items=3)
    _check_partition(tasks, 10, math.ceil(10 / 3))
    assert len(tasks) == 4 and all(len(task) <= 3 for task in tasks)
    assert pack_by_cost([2, 1, 3], list("aaa"), 3, max_items=1) == [[0], [1], [2]]


def test_unknown_costs_count_as_equal():
    nan = float("nan")
    assert pack_by_cost([nan] * 6, list("abcdef"), 2) == [[0, 2, 4], [1, 3, 5]]
    with pytest.raises(ValueError, match="3 costs for 2 group ids"):
        pack_by_cost([1, 1, 1], ["a", "b"], 2)


def _transfer_units(tmp_path) -> list:
    """Pending transfer units of a tiny-zoo plan: three pairs x two methods, all of one stream."""
    zoo = get_zoo("tiny")
    methods = {m: resolve_params(m, zoo.transfer_defaults, {}) for m in ("kl", "xe_finetune")}
    plan = make_plan(zoo, all_pairs([m.name for m in zoo.models])[:3], methods, seeds=[0])
    return pending_units(plan, tmp_path)["transfer"]


def test_launcher_tasks_per_executor_and_units_per_task(tmp_path):
    units = _transfer_units(tmp_path)
    n = len(units)
    keys = lambda tasks: sorted(u.key for task in tasks for u in task)   # noqa: E731
    slurm = _tasks("transfer", units, LaunchOptions(executor="slurm"), tmp_path)
    assert len(slurm) == n and keys(slurm) == sorted(u.key for u in units)
    two = _tasks("transfer", units, LaunchOptions(executor="slurm", units_per_task=4), tmp_path)
    assert len(two) == 2 and all(len(task) <= 4 for task in two) and keys(two) == keys(slurm)
    assert len(_tasks("transfer", units, LaunchOptions(executor="debug", tasks=2), tmp_path)) == 2
    assert len(_tasks("stats", units, LaunchOptions(executor="slurm"), tmp_path)) == 1
    # within a task the units keep the pending order (by teacher, then student)
    order = {u.key: i for i, u in enumerate(units)}
    assert all([order[u.key] for u in task] == sorted(order[u.key] for u in task)
               for task in two)


def test_local_threads_share_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(launcher, "usable_cores", lambda: 8)
    local = LaunchOptions(executor="local")
    assert [_threads(local, n) for n in (1, 2, 3, 8, 20)] == [8, 4, 2, 1, 1]
    assert _threads(LaunchOptions(executor="local", threads=3), 2) == 3


def test_usable_cores_follow_the_affinity():
    # a process pinned to one core sees one, however many the machine has
    one = min(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", "from benchmark.cores import usable_cores; "
                          "print(usable_cores())"], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1],
                         preexec_fn=lambda: os.sched_setaffinity(0, {one}))
    assert out.stdout.strip() == "1"
