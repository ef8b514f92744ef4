"""Fill an instance's database with N expired-looking rows per growing table, to measure the
hot paths against a large database. Usage: seed_rows.py DATABASE_URL N"""

from __future__ import annotations

import sys
import time

SQLITE_SEED = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
INSERT INTO {table} SELECT {columns} FROM n
"""
TABLES = {
    "authorization_requests": (
        "'seed-' || i, 'seed-client', '{}', '{}', 1, 1000, 1060, NULL, NULL, NULL"
    ),
    "audit_events": (
        "NULL, 'pushed_request.accepted', 1000, 'seed-client', NULL, 'seed-' || i, NULL, '{}'"
    ),
    "tokens": (
        "'seed-tok-' || i, 'access_token', 'seed-grant-' || (i % 1000), 'seed-client', '[]', "
        "1000, 1600, NULL, NULL, '[]', '[]', NULL, NULL"
    ),
}


def seed_sqlite(path: str, n: int) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        for table, columns in TABLES.items():
            conn.execute(SQLITE_SEED.format(table=table, columns=columns), {"n": n})
    conn.close()


def seed_postgres(url: str, n: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for table, columns in TABLES.items():
            pg_columns = columns.replace("NULL, 'pushed", "DEFAULT, 'pushed")
            if table == "audit_events":
                pg_columns = columns.split(", ", 1)[1]
                target = "audit_events (type, at, client_id, user_id, request_id, grant_id, data)"
            else:
                target = table
            pg_columns = pg_columns.replace("1, 1000, 1060", "true, 1000, 1060")
            pg_columns = pg_columns.replace("%", "%%")  # psycopg placeholders
            conn.execute(
                f"INSERT INTO {target} SELECT {pg_columns} "  # noqa: S608 - fixed text
                "FROM generate_series(1, %s) AS i",
                (n,),
            )
        conn.execute("ANALYZE")


def main() -> None:
    url, n = sys.argv[1], int(sys.argv[2])
    started = time.monotonic()
    if url.startswith("sqlite:///"):
        seed_sqlite(url[len("sqlite:///") :], n)
    else:
        seed_postgres(url, n)
    print(f"seeded {n} rows into each of {', '.join(TABLES)} in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
