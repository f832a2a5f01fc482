"""A real SMTP server for Herald's email tests (aiosmtpd), on a port of its own.

Usage: smtp_sink.py [PORT]  (0 or none: any free port)

It prints one JSON line with the port it listens on, then one JSON line per message
received: {"from", "to", "data"}. Recipients steer its replies, so tests can stage them:
  reject...@  -> 550 (refused for good)
  flaky...@   -> 451 the first time that address is seen (try later), then accepted
"""

import asyncio
import json
import sys

from aiosmtpd.smtp import SMTP

seen = set()


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such mailbox here"
        if address.startswith("flaky") and address not in seen:
            seen.add(address)
            return "451 4.3.0 busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        print(json.dumps(record), flush=True)
        return "250 2.0.0 Ok: queued as test"


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler()), "127.0.0.1", port)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await server.serve_forever()


asyncio.run(main())
