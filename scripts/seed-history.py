#!/usr/bin/env python3
"""Fills a Herald database with delivered history, for the benchmarks "throughput with
1,000,000 messages already stored" and "the 30-day analytics query" (BENCHMARKS.md).

It writes N messages of one application (uid `history`), each with one delivery and the
attempt that settled it, dated over the past 30 days, with ids of the shape Herald gives
(a ULID after the prefix, so they sort as real ones do), and adds the attempts to the
statistics rollups as Herald would. Messages go round-robin to ENDPOINTS endpoints and
EVENT_TYPES event types; one attempt in fifty failed with a 500. Run it on a migrated,
otherwise idle database (`herald migrate --database-url URL`), then bench against that URL.

    scripts/seed-history.py sqlite:///tmp/hist/herald.db 1000000 [ENDPOINTS [EVENT_TYPES]]
    scripts/seed-history.py postgres://postgres@127.0.0.1:5432/hist 1000000   # needs psql
"""

import json
import random
import sqlite3
import subprocess
import sys
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def payload(message_id: str) -> str:
    """A contact event's payload: the same words in every message but for the contact's id,
    which is the message's (so a search for one id matches one message)."""
    return json.dumps({"contact": {"id": message_id, "email": "someone@example.com"}, "n": 1})

DAY_MS = 86_400_000
# The rollup tables Herald writes, and the span of their buckets.
ROLLUPS = (("attempt_stats_minute", 60_000), ("attempt_stats_hour", 3_600_000), ("attempt_stats_day", DAY_MS))


def ulid(ms: int) -> str:
    value = (ms << 80) | random.getrandbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


LATENCY_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000]


class History:
    """The seeded history's shape: its application, endpoints and event types."""

    def __init__(self, endpoints: int, event_types: int):
        now = int(time.time() * 1000)
        self.app = f"app_{ulid(now)}"
        self.endpoints = [f"ep_{ulid(now)}" for _ in range(endpoints)]
        self.event_types = [f"contact.event{i}" if i else "contact.created" for i in range(event_types)]

    def rows(self, first: int, count: int, n: int):
        """Yields (message, delivery, attempt) tuples for messages first..first+count of n."""
        start = int(time.time() * 1000) - 30 * DAY_MS
        step = max(1, (30 * DAY_MS) // n)
        for i in range(first, first + count):
            at = start + i * step
            ep = self.endpoints[i % len(self.endpoints)]
            event_type = self.event_types[(i // len(self.endpoints)) % len(self.event_types)]
            ok = i % 50 != 0
            duration = 3 + (i * 7919) % 400
            msg, dlv, atm = (f"{p}_{ulid(at)}" for p in ("msg", "dlv", "atm"))
            yield (msg, event_type, at), (dlv, msg, ep, at, ok), (atm, dlv, msg, ep, at, ok, duration)


def rollups(history: History, n: int, span_ms: int):
    """The statistics rollup rows of the whole history, for buckets of span_ms."""
    rows = {}
    for (_, event_type, _), _, (_, _, _, ep, at, ok, duration) in history.rows(0, n, n):
        key = (at - at % span_ms, ep, event_type, 200 if ok else 500)
        row = rows.setdefault(key, [0, 0, 0] + [0] * (len(LATENCY_BOUNDS_MS) + 1))
        row[0] += 1
        row[1] += ok
        row[2] += duration
        bucket = next((b for b, bound in enumerate(LATENCY_BOUNDS_MS) if duration <= bound), len(LATENCY_BOUNDS_MS))
        row[3 + bucket] += 1
    return rows


ROLLUP_COLUMNS = "app_id, bucket, endpoint_id, event_type, status_code, attempts, succeeded, duration_ms, " + ", ".join(
    f"l{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1)
)


def seed_sqlite(path: str, n: int, history: History) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    now = int(time.time() * 1000)
    app = history.app
    with db:
        db.execute(
            "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) "
            "VALUES (?, 'history', 'history', '{}', ?, ?)",
            (app, now, now),
        )
        for ep in history.endpoints:
            db.execute(
                "INSERT INTO endpoints (id, app_id, url, description, version, disabled, metadata, "
                "headers, secret, created_at, updated_at) VALUES (?, ?, 'http://127.0.0.1:9/', '', 1, 0, "
                "'{}', '{}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ?, ?)",
                (ep, app, now, now),
            )
        for batch_start in range(0, n, 50_000):
            batch = list(history.rows(batch_start, min(50_000, n - batch_start), n))
            db.executemany(
                "INSERT INTO messages (id, app_id, event_type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                [(m, app, t, payload(m), at) for (m, t, at), _, _ in batch],
            )
            db.executemany(
                "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, "
                "trigger_type, updated_at) VALUES (?, ?, ?, ?, ?, 1, 0, ?)",
                [(d, m, ep, app, 0 if ok else 2, at) for _, (d, m, ep, at, ok), _ in batch],
            )
            db.executemany(
                "INSERT INTO attempts (id, delivery_id, msg_id, endpoint_id, app_id, url, status, "
                "response_status_code, response_headers, response, response_duration_ms, "
                "trigger_type, created_at) VALUES (?, ?, ?, ?, ?, 'http://127.0.0.1:9/', ?, ?, "
                "'{}', 'ok', ?, 0, ?)",
                [(a, d, m, ep, app, 0 if ok else 2, 200 if ok else 500, ms, at) for _, _, (a, d, m, ep, at, ok, ms) in batch],
            )
        for table, span in ROLLUPS:
            marks = ", ".join("?" * (5 + 3 + len(LATENCY_BOUNDS_MS) + 1))
            db.executemany(
                f"INSERT INTO {table} ({ROLLUP_COLUMNS}) VALUES ({marks})",
                [(app, b, ep, t, code, *counts) for (b, ep, t, code), counts in rollups(history, n, span).items()],
            )
    db.close()


def seed_postgres(url: str, n: int, history: History) -> None:
    # Each table through COPY from generated text; the rows are plain enough for the
    # default text format (no tabs, backslashes or newlines).
    app = history.app
    ts = lambda ms: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}+00"
    data = list(history.rows(0, n, n))
    endpoints = [
        f"INSERT INTO endpoints (id, app_id, url, description, version, disabled, metadata, headers, "
        f"secret, created_at, updated_at) VALUES ('{ep}', '{app}', 'http://127.0.0.1:9/', '', 1, false, "
        f"'{{}}', '{{}}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', now(), now());"
        for ep in history.endpoints
    ]
    stats = []
    for table, span in ROLLUPS:
        stats += [f"COPY {table} ({ROLLUP_COLUMNS}) FROM STDIN;"]
        stats += [
            "\t".join([app, ts(b), ep, t, str(code), *map(str, counts)])
            for (b, ep, t, code), counts in rollups(history, n, span).items()
        ]
        stats += ["\\."]
    script = [
        "BEGIN;",
        f"INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) VALUES "
        f"('{app}', 'history', 'history', '{{}}', now(), now());",
        *endpoints,
        "COPY messages (id, app_id, event_type, payload, created_at) FROM STDIN;",
        *(f"{m}\t{app}\t{t}\t{payload(m)}\t{ts(at)}" for (m, t, at), _, _ in data),
        "\\.",
        "COPY deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, trigger_type, "
        "updated_at) FROM STDIN;",
        *(f"{d}\t{m}\t{ep}\t{app}\t{0 if ok else 2}\t1\t0\t{ts(at)}" for _, (d, m, ep, at, ok), _ in data),
        "\\.",
        "COPY attempts (id, delivery_id, msg_id, endpoint_id, app_id, url, status, "
        "response_status_code, response_headers, response, response_duration_ms, trigger_type, "
        "created_at) FROM STDIN;",
        *(
            f"{a}\t{d}\t{m}\t{ep}\t{app}\thttp://127.0.0.1:9/\t{0 if ok else 2}\t{200 if ok else 500}"
            f"\t{{}}\tok\t{ms}\t0\t{ts(at)}"
            for _, _, (a, d, m, ep, at, ok, ms) in data
        ),
        "\\.",
        *stats,
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
    if not 3 <= len(sys.argv) <= 5:
        sys.exit(__doc__)
    url, n = sys.argv[1], int(sys.argv[2])
    endpoints = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    event_types = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    history = History(endpoints, event_types)
    if url.startswith("sqlite://"):
        seed_sqlite(url.removeprefix("sqlite://"), n, history)
    elif url.startswith(("postgres://", "postgresql://")):
        seed_postgres(url, n, history)
    else:
        sys.exit(f"not a database URL Herald knows: {url}")
    print(f"seeded {n} delivered messages into {url}", file=sys.stderr)


if __name__ == "__main__":
    main()
