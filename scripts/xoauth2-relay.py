#!/usr/bin/python3
"""A relay that takes only AUTH XOAUTH2, built on aiosmtpd (Debian: python3-aiosmtpd) with
a custom `auth_XOAUTH2` mechanism, answering the way Gmail documents it, for testing
Volley's token login against a server nobody here wrote.

    xoauth2-relay.py LOG USER TOKEN

It listens on 127.0.0.1 on a free port (plain text: loopback only) and prints
`listening PORT` on stdout. AUTH PLAIN and LOGIN are not offered, and MAIL needs a login.
`user=USER ^A auth=Bearer TOKEN ^A ^A` gets `235`; any other token gets `334` with a base64
JSON error, then `535 5.7.8` after the client's (empty) answer.

Every event goes to LOG, one line each, flushed at once: `auth-ok USER`, `auth-refused`
(the token is never written), `accepted RCPT` per delivered recipient.
It stops on SIGTERM or SIGINT.
"""

import asyncio
import base64
import json
import signal
import socket
import sys

from aiosmtpd.smtp import SMTP, AuthResult

ERROR = json.dumps(
    {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})


class Xoauth2Relay:
    def __init__(self, user, token, log):
        self.user = user
        self.token = token
        self.log = log

    def note(self, line):
        self.log.write(line + "\n")
        self.log.flush()

    async def auth_XOAUTH2(self, server, args):
        if len(args) < 2:
            response = await server.challenge_auth("")
        else:
            try:
                response = base64.b64decode(args[1], validate=True)
            except ValueError:
                return AuthResult(
                    success=False, handled=False, message="501 5.5.2 Can't decode base64")
        expected = "user=%s\x01auth=Bearer %s\x01\x01" % (self.user, self.token)
        if isinstance(response, bytes) and response == expected.encode():
            self.note("auth-ok " + self.user)
            return AuthResult(success=True, message="235 2.7.0 Accepted")
        # Gmail's flow: the error as a challenge, then 535 after the client's empty line.
        await server.challenge_auth(ERROR)
        self.note("auth-refused")
        return AuthResult(
            success=False, handled=False,
            message="535 5.7.8 Username and Password not accepted")

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            self.note("accepted " + rcpt)
        return "250 2.0.0 Ok: queued"


async def main():
    log_path, user, token = sys.argv[1:4]
    log = open(log_path, "a", encoding="utf-8")
    handler = Xoauth2Relay(user, token, log)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="xoauth2.test",
            ident="xoauth2 relay",
            auth_required=True,
            auth_require_tls=False,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
        ),
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
