"""Decisions about valid requests: what this deployment allows, beyond protocol validity."""
