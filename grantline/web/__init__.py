"""Starlette glue: request parsing, responses, pages, cookies and error handling."""
