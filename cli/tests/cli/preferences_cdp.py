#!/usr/bin/python3
"""Drives headless Chromium through the DevTools protocol on a Volley preference page.

Usage: preferences_cdp.py URL TOPIC

Loads URL, checks that the checkbox of TOPIC is ticked and labelled, unticks it, submits the
form with the page's own button, waits for the page that follows and prints one JSON line
with what that page shows. Every wait is bounded; any failure exits non-zero with a reason
(Chromium or python3-websocket missing included). Needs Debian's `chromium` (or
VOLLEY_CHROMIUM naming a Chromium) and `python3-websocket`.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websocket  # python3-websocket
except ImportError:
    sys.exit("python3-websocket is not installed (apt-get install python3-websocket)")

TIMEOUT = 30.0


def fail(reason):
    sys.exit(f"preferences_cdp: {reason}")


def devtools_port(profile, chromium):
    """The port Chromium wrote to DevToolsActivePort, waiting at most TIMEOUT."""
    path = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if chromium.poll() is not None:
            fail(f"chromium exited early with {chromium.returncode}")
        try:
            with open(path) as f:
                first = f.readline().strip()
            if first:
                return int(first)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    fail("chromium never opened its DevTools port")


class Page:
    """One page target over a WebSocket, with bounded waits for replies and events."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=TIMEOUT, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == mine:
                if "error" in message:
                    fail(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)
        fail(f"no reply to {method}")

    def wait_event(self, name):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for i, event in enumerate(self.events):
                if event.get("method") == name:
                    del self.events[: i + 1]
                    return event
            self.events.append(json.loads(self.ws.recv()))
        fail(f"no {name} event")

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            fail(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")


def main():
    if len(sys.argv) != 3:
        fail("usage: preferences_cdp.py URL TOPIC")
    url, topic = sys.argv[1], sys.argv[2]
    binary = (os.environ.get("VOLLEY_CHROMIUM") or shutil.which("chromium")
              or shutil.which("chromium-browser"))
    if binary is None:
        fail("chromium is not installed (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="volley-cdp-")
    chromium = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = devtools_port(profile, chromium)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT) as r:
            targets = [t for t in json.load(r) if t.get("type") == "page"]
        if not targets:
            fail("chromium shows no page")
        page = Page(targets[0]["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Page.navigate", url=url)
        page.wait_event("Page.loadEventFired")
        box = f"document.getElementById('topic-{topic}')"
        before = page.eval(
            f"({{checked: {box}.checked, label: document.querySelector(\"label[for='topic-{topic}']\").textContent,"
            " boxes: document.querySelectorAll('input[type=checkbox]').length})")
        page.eval(f"{box}.click()")
        page.eval("document.querySelector('button[type=submit]').click()")
        page.wait_event("Page.loadEventFired")
        after = page.eval(
            f"({{url: location.href, saved: document.getElementById('saved') !== null,"
            f" checked: {box} ? {box}.checked : null,"
            " text: document.body ? document.body.innerText.slice(0, 500) : ''})")
        print(json.dumps({"before": before, "after": after}))
    finally:
        chromium.kill()
        chromium.wait(timeout=TIMEOUT)
        shutil.rmtree(profile, ignore_errors=True)


main()
