"""Rate limits shared by every process, sign-in throttling, and admission control.

- ``config``: what ``[rate_limits]`` in grantline.toml says.
- ``gcra`` and ``limiter``: the algorithm, and a per-process limiter that reconciles its counts
  with a shared store (``stores``: the database or Redis) every couple of hundred milliseconds.
- ``guard``: the endpoints' budgets (per client, per peer address) and the 429 answer.
- ``sign_in``: failed sign-ins slow down per account and per address.
- ``admission``: a bound on the requests one worker handles at once; past it, 503 at once.

Modules are imported by name (this package imports nothing), so that ``grantline.settings`` can
use ``config`` without pulling in the web layer.
"""
