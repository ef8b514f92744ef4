"""CPU and RSS of a process tree, read from /proc."""

from __future__ import annotations

import subprocess
import sys
import time

from suite import proc

BUSY_CHILD = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
PARENT = (
    "import subprocess, sys, time\n"
    f"subprocess.run([sys.executable, '-c', {BUSY_CHILD!r}])\n"
    "time.sleep(5)\n"
)


def test_tree_includes_children_and_counts_their_cpu() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    try:
        time.sleep(0.2)
        tree = proc.descendants(parent.pid)
        assert tree[0] == parent.pid and len(tree) == 2
        before = proc.sample(parent.pid)
        time.sleep(1.0)
        after = proc.sample(parent.pid)
        # The child burnt 0.3 s of CPU and exited: while it ran its own time was counted,
        # afterwards the parent's cutime carries it, so the total never goes back.
        assert after.cpu_seconds >= max(before.cpu_seconds, 0.3)
        assert after.rss_bytes > 1_000_000 and after.processes == 1
    finally:
        parent.kill()
        parent.wait()


def test_cpu_by_pid_skips_processes_that_are_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert proc.cpu_by_pid([child.pid]) == {}
    assert proc.start_time(child.pid) is None
