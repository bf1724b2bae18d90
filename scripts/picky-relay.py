#!/usr/bin/python3
"""A picky SMTP relay built on aiosmtpd (Debian: python3-aiosmtpd), behaving the way
production relays do, for testing that Volley reads replies for what they say.

    picky-relay.py LOG [--per-connection 97] [--grey-domain grey.example]
                       [--close-all-at 1000,2000] [--data-451 3] [--data-451-after 500]
                       [--data-delay 0.05]

It listens on 127.0.0.1 on a free port and prints `listening PORT` on stdout, then:

- greylists each recipient of --grey-domain once at RCPT: `451 4.7.1 Greylisted`;
- closes a connection at the MAIL after --per-connection accepted messages:
  `421 4.7.0 Too many messages on this connection`;
- when its total of accepted messages reaches each of --close-all-at, every connection then
  open gets `421 4.7.0 Message limit reached` at its next MAIL and is closed;
- answers `451 4.3.0 Temporary failure` to --data-451 messages (the first ones after
  --data-451-after accepted messages), at the end of DATA;
- waits --data-delay seconds (default 0) at the end of each DATA before answering, a slow
  relay (one killed meanwhile leaves that transaction without a reply).

Every event goes to LOG, one line each, flushed at once: `accepted RCPT` per accepted
recipient, `greylisted RCPT`, `closed-per-connection N`, `closed-all`, `data451 RCPT`.
It stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import signal
import socket
import sys

from aiosmtpd.smtp import SMTP


class Picky:
    def __init__(self, args, log):
        self.args = args
        self.log = log
        self.accepted = 0
        self.greylisted = set()
        self.epoch = 0
        self.data_451_left = args.data_451
        self.close_all_at = set(args.close_all_at)

    def note(self, line):
        self.log.write(line + "\n")
        self.log.flush()

    def closing(self, server, reply):
        loop = asyncio.get_running_loop()
        # The reply is written before the loop runs the close, which flushes it first.
        loop.call_soon(server.transport.close)
        return reply

    async def handle_MAIL(self, server, session, envelope, address, options):
        if not hasattr(session, "picky_epoch"):
            session.picky_epoch = self.epoch
            session.picky_accepted = 0
        if session.picky_epoch < self.epoch:
            self.note("closed-all-connection %d" % session.picky_accepted)
            return self.closing(server, "421 4.7.0 Message limit reached")
        if session.picky_accepted >= self.args.per_connection:
            self.note("closed-per-connection %d" % session.picky_accepted)
            return self.closing(
                server, "421 4.7.0 Too many messages on this connection")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, options):
        domain = address.rsplit("@", 1)[-1].lower()
        key = address.lower()
        if domain == self.args.grey_domain and key not in self.greylisted:
            self.greylisted.add(key)
            self.note("greylisted " + address)
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.args.data_delay > 0:
            await asyncio.sleep(self.args.data_delay)
        if self.accepted >= self.args.data_451_after and self.data_451_left > 0:
            self.data_451_left -= 1
            for rcpt in envelope.rcpt_tos:
                self.note("data451 " + rcpt)
            return "451 4.3.0 Temporary failure, please try again"
        self.accepted += 1
        session.picky_accepted = getattr(session, "picky_accepted", 0) + 1
        for rcpt in envelope.rcpt_tos:
            self.note("accepted " + rcpt)
        if self.accepted in self.close_all_at:
            # Every connection open now, this one too, is closed at its next MAIL.
            self.epoch += 1
            self.note("closed-all")
        return "250 2.0.0 Ok: queued"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log")
    parser.add_argument("--per-connection", type=int, default=97)
    parser.add_argument("--grey-domain", default="grey.example")
    parser.add_argument(
        "--close-all-at",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[1000, 2000])
    parser.add_argument("--data-451", type=int, default=3)
    parser.add_argument("--data-451-after", type=int, default=500)
    parser.add_argument("--data-delay", type=float, default=0.0)
    return parser.parse_args()


async def main():
    args = parse_args()
    log = open(args.log, "a", encoding="utf-8")
    handler = Picky(args, log)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="picky.test", ident="picky relay"),
        sock=sock)
    print("listening %d" % sock.getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    log.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
