"""Ids that fall in a chosen audit lane, so a test can say in which lane its events land."""

from __future__ import annotations

import functools
import itertools

from grantline.audit.chain import LANES, lane_of

__all__ = ["id_in_lane"]


@functools.cache
def id_in_lane(lane: int, prefix: str) -> str:
    """The first ``{prefix}-{i}`` whose lane is ``lane``: an event whose first id (request,
    else grant, else client, else user) is this one lands there."""
    if not 0 <= lane < LANES:
        raise ValueError(f"no lane {lane}")
    for i in itertools.count():
        key = f"{prefix}-{i}"
        if lane_of(key, None, None, None) == lane:
            return key
    raise AssertionError("unreachable")  # pragma: no cover
