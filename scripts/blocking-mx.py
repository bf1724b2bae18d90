#!/usr/bin/python3
"""An MX host that starts blocking the sender, built on aiosmtpd (Debian: python3-aiosmtpd),
for testing Volley's circuit breaker on policy blocks against a server it did not write.

    blocking-mx.py LOG --listen 127.0.0.10,127.0.0.11 [--block-domain d0.example]
                       [--block-after 6]

It listens on every address of --listen on one free port shared by all of them (so each
address can be the MX host of its own domains) and prints `listening PORT` on stdout. Once
it has accepted --block-after messages (over all domains), it answers every RCPT for
--block-domain with Gmail's reply to mail it judges unsolicited:

    550-5.7.1 [192.0.2.1] Our system has detected that this message is
    550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,
    550 5.7.1 this message has been blocked. ...

(a multi-line reply, as Gmail sends it). SIGUSR1 lifts the block. Every event goes to LOG,
one line each, flushed at once: `accepted RCPT` per accepted recipient, `blocked RCPT` per
refused one. It stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import signal
import socket
import sys

from aiosmtpd.smtp import SMTP

# Gmail's wording (support.google.com/mail/?p=UnsolicitedMessageError), one reply line per
# continuation, as Gmail wraps it.
GMAIL_UNSOLICITED = (
    "550-5.7.1 [192.0.2.1] Our system has detected that this message is\r\n"
    "550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n"
    "550-5.7.1 this message has been blocked. For more information, go to\r\n"
    "550 5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError"
)


class Blocking:
    def __init__(self, args, log):
        self.args = args
        self.log = log
        self.accepted = 0
        self.lifted = False

    def note(self, line):
        self.log.write(line + "\n")
        self.log.flush()

    async def handle_RCPT(self, server, session, envelope, address, options):
        domain = address.rsplit("@", 1)[-1].lower()
        blocking = (not self.lifted and domain == self.args.block_domain
                    and self.accepted >= self.args.block_after)
        if blocking:
            self.note("blocked " + address)
            return GMAIL_UNSOLICITED
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.accepted += 1
        for rcpt in envelope.rcpt_tos:
            self.note("accepted " + rcpt)
        return "250 2.0.0 Ok: queued"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log")
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--block-domain", default="d0.example")
    parser.add_argument("--block-after", type=int, default=6)
    return parser.parse_args()


def bind_all(addresses):
    """Sockets on every address, on one port free on all of them."""
    for _ in range(20):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind((addresses[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        socks = []
        try:
            for address in addresses:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(sock)
                sock.bind((address, port))
            return port, socks
        except OSError:
            for sock in socks:
                sock.close()
    sys.exit("no port free on every address of --listen")


async def main():
    args = parse_args()
    args.block_domain = args.block_domain.lower()
    log = open(args.log, "a", encoding="utf-8")
    handler = Blocking(args, log)
    port, socks = bind_all([a for a in args.listen.split(",") if a])
    loop = asyncio.get_running_loop()
    servers = []
    for sock in socks:
        servers.append(await loop.create_server(
            lambda: SMTP(handler, hostname="mx.blocking.test", ident="blocking mx"),
            sock=sock))
    print("listening %d" % port, flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(handler, "lifted", True))
    await stop.wait()
    for server in servers:
        server.close()
    log.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
