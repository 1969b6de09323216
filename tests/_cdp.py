"""A minimal Chrome DevTools Protocol client for the browser tests (tests/test_browser.py).

Chromium is started headless with ``--remote-debugging-pipe``: the protocol's JSON
messages go through two pipes (the browser reads file descriptor 3 and writes 4, each
message ended by a NUL byte), so no websocket library, no port and no driver binary are
needed (playwright and selenium would each bring a browser download or a driver; the
Debian ``chromium`` package is all this needs). The network is disabled twice: the page
is emulated offline (``Network.emulateNetworkConditions``) and the browser is given a
proxy on a closed local port, so even a request the emulation let through goes nowhere.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

#: Executable names of Chromium on Debian/Ubuntu, in the order tried.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
#: URL schemes that are not network requests (the page's own file, inlined data).
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")


def find_chromium() -> str | None:
    """Path of a Chromium executable on the PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Browser:
    """Headless Chromium driven over ``--remote-debugging-pipe``.

    Use as a context manager; :meth:`open_page` returns a :class:`Page`.
    """

    def __init__(self, executable: str, profile_dir: Path, *, timeout: float = 60.0):
        self.timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict] = []
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # move the child's ends to high descriptors, then to 3 and 4 in the child
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 20)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 20)
        os.close(to_child_r)
        os.close(from_child_w)

        def child_fds() -> None:
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        args = [
            executable,
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-features=Translate,OptimizationHints,MediaRouter",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile_dir}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,  # noqa: PLW1509 - single-threaded test process
            pass_fds=(3, 4),
        )
        os.close(hi_r)
        os.close(hi_w)
        self._w = to_child_w
        self._r = from_child_r

    # ------------------------------------------------------------------ protocol
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise CdpError("no message from Chromium in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise CdpError(f"Chromium closed the pipe (exit code {self.proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result (events met meanwhile are kept)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Collect events for about ``seconds`` (a cheap round trip, repeated)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.send("Browser.getVersion")
            time.sleep(0.01)

    def open_page(self, width: int = 1400, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        return Page(self, session, width, height)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (CdpError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab, offline, recording its requests and console errors."""

    def __init__(self, browser: Browser, session: str, width: int, height: int):
        self.browser = browser
        self.session = session
        self._first_event = len(browser.events)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        self.send("Network.setCacheDisabled", {"cacheDisabled": True})
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def _events(self) -> list[dict]:
        return [
            e
            for e in self.browser.events[self._first_event :]
            if e.get("sessionId") == self.session
        ]

    def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.browser.timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events()):
            if time.monotonic() > deadline:
                raise CdpError(f"{url} did not finish loading")
            self.browser.pump(0.02)

    def evaluate(self, expression: str) -> Any:
        """Value of a JavaScript expression (JSON-serialisable), awaiting promises."""
        res = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in res:
            raise CdpError(f"{expression[:60]}…: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CdpError(f"still false after {timeout} s: {expression}")
            self.browser.pump(0.05)

    def requests(self) -> list[str]:
        """URLs of every request the page made (or tried), in order."""
        return [
            e["params"]["request"]["url"]
            for e in self._events()
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def network_requests(self) -> list[str]:
        """URLs of the requests to anything but the page's files and inlined data."""
        return [u for u in self.requests() if not u.startswith(LOCAL_SCHEMES)]

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors, as text."""
        out = []
        for e in self._events():
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(str(d.get("exception", {}).get("description") or d.get("text")))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"{p['entry'].get('text')} ({p['entry'].get('url', '')})")
        return out

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path
