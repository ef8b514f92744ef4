"""Grantline: an OAuth 2.0 authorization server built around Pushed Authorization Requests."""

__version__ = "0.1.0"
