"""The generic cell rate algorithm (GCRA), in integer microseconds.

A key's whole state is one number, its theoretical arrival time (TAT): the moment its bucket
would be full again. A request costs ``interval`` and is admitted while the TAT it leads to
runs no more than ``burst`` ahead of now. One number per key is what makes reconciling several
processes cheap: adding ``n`` requests is ``max(tat, now) + n * interval``, in any order.
"""

from __future__ import annotations

__all__ = ["admit", "charge", "remaining", "retry_after"]


def charge(tat: int, now: int, interval: int, hits: int = 1) -> int:
    """The TAT after ``hits`` more requests."""
    return max(tat, now) + hits * interval


def admit(tat: int, now: int, interval: int, burst: int) -> tuple[bool, int]:
    """Whether one more request fits, and the TAT it would lead to."""
    new_tat = charge(tat, now, interval)
    return new_tat - now <= burst, new_tat


def remaining(tat: int, now: int, interval: int, burst: int) -> int:
    """Requests that still fit right now."""
    return max(0, burst - max(0, tat - now)) // interval


def retry_after(tat: int, now: int, interval: int, burst: int) -> int:
    """Whole seconds until one more request fits (at least 1 for a refused one)."""
    wait_us = tat + interval - burst - now
    return max(1, -(-wait_us // 1_000_000))
