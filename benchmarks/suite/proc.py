"""CPU time and resident memory of a server's process tree, read from /proc.

A server is its root process and every live descendant (uvicorn's supervisor and workers, the
node:cluster primary and workers). CPU is utime+stime of each, plus cutime+cstime of the root
for children that already exited; RSS is summed over the live processes, so pages that forked
processes share are counted once per process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TreeSample", "cpu_by_pid", "descendants", "sample", "sample_pids", "start_time"]

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PROC = Path("/proc")


@dataclass(frozen=True)
class TreeSample:
    cpu_seconds: float
    rss_bytes: int
    processes: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces or parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot): with the pid, names one process even
    if the pid is later reused."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None else None


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _rss_bytes(pid: int) -> int:
    try:
        resident = (_PROC / str(pid) / "statm").read_text().split()[1]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0
    return int(resident) * _PAGE


def sample_pids(pids: Iterable[int], *, reaped_of: int | None = None) -> TreeSample:
    """CPU and RSS summed over ``pids``; ``reaped_of`` adds that process's exited children."""
    ticks = 0
    rss = 0
    count = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # After the command name: state=0, ppid=1, ..., utime=11, stime=12, cutime=13, cstime=14.
        ticks += int(fields[11]) + int(fields[12])
        if pid == reaped_of:
            ticks += int(fields[13]) + int(fields[14])
        rss += _rss_bytes(pid)
        count += 1
    return TreeSample(ticks / _TICKS, rss, count)


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds of each live process in ``pids``: deltas are then taken per process, so
    one that ends (or starts) in between adds nothing false."""
    seconds: dict[int, float] = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return seconds


def sample(root: int) -> TreeSample:
    """CPU and RSS of ``root``'s whole tree."""
    return sample_pids(descendants(root), reaped_of=root)
