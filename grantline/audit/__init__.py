"""The audit trail: a fixed vocabulary of events, each written with the change it records."""

from grantline.audit.events import EVENT_TYPES, event

__all__ = ["EVENT_TYPES", "event"]
