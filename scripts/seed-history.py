#!/usr/bin/env python3
"""Fills a Herald database with delivered history, for the benchmark "throughput with
1,000,000 messages already stored" (BENCHMARKS.md).

It writes N messages of one application, each with one delivery that succeeded and the
attempt that delivered it, dated over the past 30 days, with ids of the shape Herald gives
(a ULID after the prefix, so they sort as real ones do). Run it on a migrated, otherwise
idle database (`herald migrate --database-url URL`), then bench against that URL.

    scripts/seed-history.py sqlite:///tmp/hist/herald.db 1000000
    scripts/seed-history.py postgres://postgres@127.0.0.1:5432/hist 1000000   # needs psql
"""

import json
import os
import random
import sqlite3
import subprocess
import sys
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PAYLOAD = json.dumps({"contact": {"id": 42, "email": "someone@example.com"}, "n": 1})
DAY_MS = 86_400_000


def ulid(ms: int) -> str:
    value = (ms << 80) | random.getrandbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def rows(n: int):
    """Yields (message, delivery, attempt) column tuples, oldest first."""
    now = int(time.time() * 1000)
    start = now - 30 * DAY_MS
    step = max(1, (30 * DAY_MS) // n)
    for i in range(n):
        at = start + i * step
        msg, dlv, atm = (f"{p}_{ulid(at)}" for p in ("msg", "dlv", "atm"))
        yield (msg, at), (dlv, msg, at), (atm, dlv, msg, at)


def seed_sqlite(path: str, n: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    now = int(time.time() * 1000)
    app, ep = f"app_{ulid(now)}", f"ep_{ulid(now)}"
    with db:
        db.execute(
            "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) "
            "VALUES (?, 'history', 'history', '{}', ?, ?)",
            (app, now, now),
        )
        db.execute(
            "INSERT INTO endpoints (id, app_id, url, description, version, disabled, metadata, "
            "headers, secret, created_at, updated_at) VALUES (?, ?, 'http://127.0.0.1:9/', '', 1, 0, "
            "'{}', '{}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ?, ?)",
            (ep, app, now, now),
        )
        for batch_start in range(0, n, 50_000):
            batch = list(rows(min(50_000, n - batch_start)))
            db.executemany(
                "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
                "VALUES (?, ?, 'contact.created', ?, ?)",
                [(m, app, PAYLOAD, at) for (m, at), _, _ in batch],
            )
            db.executemany(
                "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, "
                "trigger_type, updated_at) VALUES (?, ?, ?, ?, 0, 1, 0, ?)",
                [(d, m, ep, app, at) for _, (d, m, at), _ in batch],
            )
            db.executemany(
                "INSERT INTO attempts (id, delivery_id, msg_id, endpoint_id, app_id, url, status, "
                "response_status_code, response_headers, response, response_duration_ms, "
                "trigger_type, created_at) VALUES (?, ?, ?, ?, ?, 'http://127.0.0.1:9/', 0, 200, "
                "'{}', 'ok', 3, 0, ?)",
                [(a, d, m, ep, app, at) for _, _, (a, d, m, at) in batch],
            )
    db.close()


def seed_postgres(url: str, n: int) -> None:
    # Each table through COPY from generated text; the rows are plain enough for the
    # default text format (no tabs, backslashes or newlines).
    now = int(time.time() * 1000)
    app, ep = f"app_{ulid(now)}", f"ep_{ulid(now)}"
    ts = lambda ms: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}+00"
    data = list(rows(n))
    script = [
        "BEGIN;",
        f"INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) VALUES "
        f"('{app}', 'history', 'history', '{{}}', now(), now());",
        f"INSERT INTO endpoints (id, app_id, url, description, version, disabled, metadata, headers, "
        f"secret, created_at, updated_at) VALUES ('{ep}', '{app}', 'http://127.0.0.1:9/', '', 1, false, "
        f"'{{}}', '{{}}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', now(), now());",
        "COPY messages (id, app_id, event_type, payload, created_at) FROM STDIN;",
        *(f"{m}\t{app}\tcontact.created\t{PAYLOAD}\t{ts(at)}" for (m, at), _, _ in data),
        "\\.",
        "COPY deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, trigger_type, "
        "updated_at) FROM STDIN;",
        *(f"{d}\t{m}\t{ep}\t{app}\t0\t1\t0\t{ts(at)}" for _, (d, m, at), _ in data),
        "\\.",
        "COPY attempts (id, delivery_id, msg_id, endpoint_id, app_id, url, status, "
        "response_status_code, response_headers, response, response_duration_ms, trigger_type, "
        "created_at) FROM STDIN;",
        *(
            f"{a}\t{d}\t{m}\t{ep}\t{app}\thttp://127.0.0.1:9/\t0\t200\t{{}}\tok\t3\t0\t{ts(at)}"
            for _, _, (a, d, m, at) in data
        ),
        "\\.",
        "COMMIT;",
        "ANALYZE;",
    ]
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", url],
        input="\n".join(script) + "\n",
        text=True,
        check=True,
    )


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    url, n = sys.argv[1], int(sys.argv[2])
    if url.startswith("sqlite://"):
        seed_sqlite(url.removeprefix("sqlite://"), n)
    elif url.startswith(("postgres://", "postgresql://")):
        seed_postgres(url, n)
    else:
        sys.exit(f"not a database URL Herald knows: {url}")
    print(f"seeded {n} delivered messages into {url}", file=sys.stderr)


if __name__ == "__main__":
    main()
