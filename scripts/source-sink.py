#!/usr/bin/python3
"""An MX host built on aiosmtpd (Debian: python3-aiosmtpd) that records where each session
came from, for testing Volley's `[mx] source_addresses` against an SMTP server nobody here
wrote.

    source-sink.py LOG

It listens on 127.0.0.1 on a free port and prints `listening PORT` on stdout. For every
accepted message it writes one line per recipient to LOG, flushed at once:

    accepted PEER_IP EHLO_NAME RCPT

where PEER_IP is the client's address as the operating system reports it (`session.peer`)
and EHLO_NAME the name it gave in EHLO or HELO (`session.host_name`). It stops on SIGTERM
or SIGINT.
"""

import argparse
import asyncio
import signal
import socket
import sys

from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, log):
        self.log = log

    async def handle_DATA(self, server, session, envelope):
        peer = session.peer[0] if session.peer else "?"
        for rcpt in envelope.rcpt_tos:
            self.log.write("accepted %s %s %s\n" % (peer, session.host_name, rcpt))
        self.log.flush()
        return "250 2.0.0 Ok: queued"


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log")
    args = parser.parse_args()
    log = open(args.log, "a", encoding="utf-8")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Recorder(log), hostname="mx.test", ident="source sink"),
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
