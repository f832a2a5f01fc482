#!/usr/bin/env python3
"""How soon a long poll of the events API answers once a message is published (BENCHMARKS.md,
"Long-poll wake-up"). Not a test: it prints figures.

It starts Herald (one node, or two sharing a PostgreSQL database so the publish and the poll
are on different nodes), holds READERS long polls (`wait_ms=30000`) open on the reading node,
publishes one message on the other, and records for each reader the time from sending the
publish to the poll's answer (the publish's own commit included: a poll can answer before the
publish's 202 is back). ROUNDS rounds; it reports the median and the 99th percentile.

    scripts/bench-long-poll.py HERALD_BIN sqlite [ROUNDS [READERS]]
    scripts/bench-long-poll.py HERALD_BIN postgres://postgres@127.0.0.1:5432/lp [ROUNDS [READERS]]
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TOKEN = "bench-long-poll-admin-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}/api/v1{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def start_node(binary: str, database_url: str, data_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, HERALD_ADMIN_TOKEN=TOKEN, HERALD_LOG="warn")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
         "--database-url", database_url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            call(base, "GET", "/health", timeout=2)
            return proc, base
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"herald did not start on {base}")
            time.sleep(0.1)


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    binary, store = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    readers = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    tmp = tempfile.mkdtemp(prefix="herald-lp-")
    nodes = []
    if store == "sqlite":
        url = f"sqlite://{tmp}/herald.db"
        nodes.append(start_node(binary, url, tmp))
        publisher, reader = nodes[0][1], nodes[0][1]
    else:
        nodes.append(start_node(binary, store, tmp + "/a"))
        nodes.append(start_node(binary, store, tmp + "/b"))
        publisher, reader = nodes[0][1], nodes[1][1]
    try:
        app = call(publisher, "POST", "/app", {"name": "lp", "uid": f"lp-{int(time.time())}"})["id"]
        iterator = call(reader, "GET", f"/app/{app}/events")["iterator"]
        delays = []
        for _ in range(rounds):
            answered = [None] * readers
            ready = threading.Barrier(readers + 1)

            def poll(i: int) -> None:
                ready.wait()
                page = call(reader, "GET", f"/app/{app}/events?iterator={iterator}&wait_ms=30000")
                assert page["data"], page
                answered[i] = time.monotonic()

            threads = [threading.Thread(target=poll, args=(i,)) for i in range(readers)]
            for t in threads:
                t.start()
            ready.wait()
            time.sleep(0.2)  # let every poll reach the server and start waiting
            sent = time.monotonic()
            call(publisher, "POST", f"/app/{app}/msg", {"eventType": "lp.tick", "payload": {}})
            for t in threads:
                t.join()
            delays += [(a - sent) * 1000 for a in answered]
            # The next round waits after this message.
            iterator = call(reader, "GET", f"/app/{app}/events?iterator={iterator}")["iterator"]
        delays.sort()
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        where = "one node" if store == "sqlite" else "published on node A, polled on node B"
        print(f"{store} ({where}): {len(delays)} wake-ups, "
              f"median {statistics.median(delays):.1f} ms, p99 {p99:.1f} ms, max {delays[-1]:.1f} ms")
    finally:
        for proc, _ in nodes:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
