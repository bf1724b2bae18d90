#!/usr/bin/python3
"""An SMTP server (aiosmtpd, Debian: python3-aiosmtpd) that logs when each message arrived,
for scripts/tx-latency.sh: the receiving side of the transactional latency benchmark.

    tx-sink.py LOG [--delay-ms 0]

It listens on 127.0.0.1 on a free port, prints `listening PORT` on stdout, accepts every
message (after --delay-ms at the end of DATA: a slow relay) and writes one line per message
to LOG just before it answers 250: `ARRIVAL-EPOCH-SECONDS SUBJECT`. It stops on SIGTERM.
"""

import argparse
import asyncio
import email.parser
import signal
import socket
import sys
import time

from aiosmtpd.smtp import SMTP


class Logger:
    def __init__(self, log, delay):
        self.log = log
        self.delay = delay
        self.parser = email.parser.BytesHeaderParser()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        subject = self.parser.parsebytes(envelope.original_content or b"").get("Subject", "")
        self.log.write("%.6f %s\n" % (time.time(), " ".join(str(subject).split())))
        return "250 2.0.0 Ok: queued"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    log = open(args.log, "w", buffering=1 << 16)
    handler = Logger(log, args.delay_ms / 1000.0)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, data_size_limit=None), sock=sock
    )
    print("listening %d" % sock.getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    log.flush()
    log.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
