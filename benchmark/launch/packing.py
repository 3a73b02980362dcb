"""Packing a stage's units into tasks of near-equal estimated cost.

The packer sees only items, each with a cost and a group id (items of one group share work when
they run in one task: a lockstep group), in the order the tasks should run them. Pieces go
longest first, each to the task with the least cost so far (longest-processing-time-first), which
leaves the dearest task at most one piece above the cheapest.

Pieces are whole groups first; a group that alone costs more than a task's fair share (the total
cost over the number of tasks) is cut, in its order, into runs of about one share each (a run
ends at the item boundary nearest one share past its start). When the dearest task would
still cost more than the fair share / BUSY (a core idle for more than 5% of the stage), the
packing is tried again with groups cut at half the share, then a quarter, ..., until it is that
busy or no piece can be cut further, and the most even packing found wins: groups stay whole
unless keeping them whole leaves cores idle. With `max_items` a piece holds at most that many
items and a task takes a piece only while it has room; when no task has room for a whole piece,
the task with the most room takes what fits and the rest goes on as a piece of its own.

Empty tasks are dropped; each task lists its items in their input order, and tasks are ordered
by their first item, so the same input always gives the same tasks.
"""
import heapq
import math
from collections import deque
from collections.abc import Hashable, Sequence

BUSY = 0.95       # the share of a stage's wall time every core should work, by the estimate


def pack_by_cost(costs: Sequence[float], groups: Sequence[Hashable], n_tasks: int,
                 max_items: int | None = None) -> list[list[int]]:
    """At most `n_tasks` tasks, each a sorted list of item indices, every item in exactly one.
    `costs`: each item's cost (NaN or negative counts as 0; all unknown: 1 each); `groups`: each
    item's group id; `max_items`: the most items one task may hold (None: no limit)."""
    if len(costs) != len(groups):
        raise ValueError(f"{len(costs)} costs for {len(groups)} group ids")
    if not len(costs):
        return []
    costs = _known(costs)
    n_tasks = max(1, min(n_tasks, len(costs)))
    if max_items is not None:
        n_tasks = max(n_tasks, math.ceil(len(costs) / max_items))   # room for every item
    fair = sum(costs) / n_tasks
    members: dict[Hashable, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    best, best_cost, share, n_pieces = None, math.inf, fair, 0
    while True:
        pieces = [run for items in members.values() for cut in _cut(items, costs, share)
                  for run in _at_most(cut, max_items)]
        tasks = _assign(pieces, costs, n_tasks, max_items or len(costs))
        dearest = max(sum(costs[i] for i in task) for task in tasks)
        if dearest < best_cost:
            best, best_cost = tasks, dearest
        if best_cost <= fair / BUSY or len(pieces) == n_pieces or len(pieces) == len(costs):
            break
        share, n_pieces = share / 2, len(pieces)
    return sorted((sorted(task) for task in best if task), key=lambda task: task[0])


def _known(costs: Sequence[float]) -> list[float]:
    known = [c if c > 0 else 0.0 for c in costs]          # NaN > 0 is False
    return known if any(known) else [1.0] * len(known)


def _cut(items: list[int], costs: list[float], share: float) -> list[list[int]]:
    """A group as runs of about `share` cost each (a run ends at the item boundary nearest one
    share past its start): whole when it costs at most `share`."""
    if sum(costs[i] for i in items) <= share or len(items) == 1:
        return [items]
    runs, start, base, spent = [], 0, 0.0, 0.0      # base: the cost before the current run
    for end, i in enumerate(items, start=1):
        before, spent = spent, spent + costs[i]
        if spent - base < share:
            continue
        after = spent - base - share <= share - (before - base) or end - 1 == start
        cut = end if after and end < len(items) else end - 1
        if cut > start:
            runs.append(items[start:cut])
            start, base = cut, spent if cut == end else before
    return runs + [items[start:]]


def _at_most(items: list[int], max_items: int | None) -> list[list[int]]:
    """Consecutive runs of at most `max_items`, of near-equal length."""
    if max_items is None or len(items) <= max_items:
        return [items]
    n = math.ceil(len(items) / max_items)
    size, extra = divmod(len(items), n)
    bounds = [k * size + min(k, extra) for k in range(n + 1)]
    return [items[a:b] for a, b in zip(bounds, bounds[1:])]


def _assign(pieces: list[list[int]], costs: list[float], n_tasks: int,
            room: int) -> list[list[int]]:
    """Longest piece first (ties: the earlier piece), each to the cheapest task with room for
    it (ties: the task with fewer items, then the earlier task). A heap of the tasks not yet
    full keeps this near n log n for 10^5 single-unit tasks."""
    cost_of = [sum(costs[i] for i in piece) for piece in pieces]
    order = sorted(range(len(pieces)), key=lambda p: (-cost_of[p], pieces[p][0]))
    queue = deque(pieces[p] for p in order)
    tasks: list[list[int]] = [[] for _ in range(n_tasks)]
    heap = [(0.0, 0, t) for t in range(n_tasks)]          # (cost so far, items, task)
    while queue:
        piece = queue.popleft()
        passed = []                    # tasks too full for this piece, back in the heap after
        while heap and heap[0][1] + len(piece) > room:
            passed.append(heapq.heappop(heap))
        if heap:
            load, n, task = heapq.heappop(heap)
        else:                          # no task has room for all of it: fill the roomiest
            load, n, task = min(passed, key=lambda entry: (entry[1], entry[2]))
            passed.remove((load, n, task))
            piece, rest = piece[:room - n], piece[room - n:]
            queue.appendleft(rest)
        tasks[task] += piece
        for entry in passed + [(load + sum(costs[i] for i in piece), n + len(piece), task)]:
            if entry[1] < room:        # a full task leaves the heap for good
                heapq.heappush(heap, entry)
    return tasks
