"""Mint N refresh tokens, each on its own grant and pushed request (so their audit events
spread over the lanes as real traffic does), straight into an instance's database, and print
them one per line (for token_refresh.lua). Usage: mint_refresh_tokens.py DATA_DIR N"""

from __future__ import annotations

import secrets
import sys
import time

from grantline.instance import Instance
from grantline.tokens.digest import Digester
from grantline.tokens.ordered import new_refresh_token, refresh_token_id


def main() -> None:
    instance = Instance(__import__("pathlib").Path(sys.argv[1]))
    n = int(sys.argv[2])
    settings = instance.settings()
    digester = Digester(settings.secret_key)
    now = int(time.time())
    tokens = [new_refresh_token() for _ in range(n)]
    grant_ids = [f"bench-grant-{secrets.token_hex(8)}" for _ in range(n)]
    grants = [
        (grant_id, "bench", "bench-user", '["inbox.read"]', f"request-{grant_id}", now)
        for grant_id in grant_ids
    ]
    rows = [
        (refresh_token_id(digester, token), grant_id, now, now + 86400)
        for token, grant_id in zip(tokens, grant_ids, strict=True)
    ]
    grant_sql = (
        "INSERT INTO grants (grant_id, client_id, user_id, scopes, request_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    token_sql = (
        "INSERT INTO tokens (token_digest, kind, grant_id, client_id, scopes, created_at, "
        "expires_at) VALUES (?, 'refresh_token', ?, 'bench', '[\"inbox.read\"]', ?, ?)"
    )
    url = settings.database_url
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///") :])
        with conn:
            conn.executemany(grant_sql, grants)
            conn.executemany(token_sql, rows)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as pg, pg.cursor() as cur:
            cur.executemany(grant_sql.replace("?", "%s"), grants)
            cur.executemany(token_sql.replace("?", "%s"), rows)
    sys.stdout.write("\n".join(tokens) + "\n")


if __name__ == "__main__":
    main()
