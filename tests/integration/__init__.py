"""Tests against a real ``grantline serve`` process over HTTP (and a real browser)."""
