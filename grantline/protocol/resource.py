"""Resource indicators (RFC 8707): which protected resources a token is meant for."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from grantline.errors import InvalidTarget
from grantline.protocol.params import split_values

__all__ = ["MAX_RESOURCES", "check_resource_uri", "parse_resources"]

MAX_RESOURCES = 16


def check_resource_uri(value: str) -> str:
    """RFC 8707 section 2: "Its value MUST be an absolute URI ... MUST NOT include a fragment
    component." Used both for requests and when registering a client's resources."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise InvalidTarget(f"resource {value!r} is not an absolute URI.") from None
    if (
        not parts.scheme
        or not (parts.netloc or parts.path)
        or "#" in value
        or any(ch.isspace() for ch in value)
        or (parts.scheme in ("http", "https") and not parts.hostname)
    ):
        raise InvalidTarget(f"resource {value!r} is not an absolute URI without a fragment.")
    return value


def parse_resources(joined: str | None, allowed: Collection[str]) -> tuple[str, ...]:
    """The requested ``resource`` values, each checked and allowed for the client. A client
    with no registered resources may name none."""
    values = split_values(joined)
    # Counted before anything is checked, so the work per request stays bounded.
    if len(set(values)) > MAX_RESOURCES:
        raise InvalidTarget(f"At most {MAX_RESOURCES} resources may be requested.")
    resources: list[str] = []
    for value in values:
        check_resource_uri(value)
        if value not in allowed:
            raise InvalidTarget(f"This client may not request the resource {value!r}.")
        if value not in resources:
            resources.append(value)
    return tuple(resources)
