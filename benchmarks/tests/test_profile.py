"""Reading py-spy's collapsed stacks into own and cumulative shares."""

from __future__ import annotations

from suite.profile import summarize_collapsed

_HEAD = 'process 1:"python";thread (0x1);run (asyncio/runners.py:118)'
STACKS = "\n".join(
    [
        f"{_HEAD};par (grantline/endpoints/par.py:40);commit (grantline/storage/sql.py:90) 30",
        f"{_HEAD};par (grantline/endpoints/par.py:41);dumps (json/__init__.py:231) 10",
        f"{_HEAD};send (uvicorn/protocols/http/httptools_impl.py:500) 60",
    ]
)


def test_own_and_cumulative_shares() -> None:
    text = summarize_collapsed(STACKS, "title")
    own = text.split("top 35 by own time:")[1].split("top 35 by own time, by line:")[0]
    cumulative = text.split("top 35 by cumulative time:")[1]
    assert "100 samples" in text
    assert "60.0  send (uvicorn/protocols/http/httptools_impl.py)" in own
    assert "30.0  commit (grantline/storage/sql.py)" in own
    # par appears on two lines of one function: counted once per stack, 40 % in all.
    assert "40.0  par (grantline/endpoints/par.py)" in cumulative
    assert "100.0  run (asyncio/runners.py)" in cumulative
