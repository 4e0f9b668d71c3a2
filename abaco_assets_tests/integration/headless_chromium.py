"""Drive Debian's headless chromium over the DevTools protocol, with nothing but the standard library.

Why the pipe transport (``--remote-debugging-pipe``) rather than a port and
a WebSocket client: no extra Python package, no TCP port to pick or leak,
and the browser dies with its pipes. Chromium reads NUL-terminated JSON
commands from file descriptor 3 and writes responses and events to
descriptor 4; ``launch`` wires two os.pipe() pairs onto those numbers.

Only what the browser test needs: open a page in a fresh tab, collect the
console, log, exception and network events it raises, evaluate JavaScript
in it, take a full-page screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")


def find_chromium() -> str | None:
    configured = os.environ.get("ABACO_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def chromium_flags(user_data_dir: Path) -> list[str]:
    """The flags of the brief: headless, no sandbox as root, nothing the browser fetches on its own."""
    flags = ["--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
             "--mute-audio", "--hide-scrollbars", f"--user-data-dir={user_data_dir}"]
    if os.geteuid() == 0:
        flags.insert(1, "--no-sandbox")
    return flags


@dataclass
class PageReport:
    """What a page did while it loaded."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requested_urls: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


class DevToolsPipe:
    """A chromium process and its DevTools pipe; use as a context manager."""

    def __init__(self, chromium: str, timeout_seconds: float = 30.0):
        self.chromium = chromium
        self.timeout = timeout_seconds
        self._profile = tempfile.TemporaryDirectory(prefix="abaco-devtools-")
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._events: list[dict[str, Any]] = []
        self._next_id = 0
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "DevToolsPipe":
        command_read, self._command_write = os.pipe()
        self._response_read, response_write = os.pipe()

        def wire_descriptors() -> None:  # runs in the child between fork and exec
            command = fcntl.fcntl(command_read, fcntl.F_DUPFD, 10)
            response = fcntl.fcntl(response_write, fcntl.F_DUPFD, 10)
            os.dup2(command, 3)  # dup2 targets are inheritable: they survive exec
            os.dup2(response, 4)

        self.process = subprocess.Popen(
            [self.chromium, *chromium_flags(Path(self._profile.name)), "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=wire_descriptors, close_fds=False)
        os.close(command_read)
        os.close(response_write)
        threading.Thread(target=self._read_loop, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self.process and self.process.poll() is None:
                try:
                    self.send("Browser.close")
                except Exception:  # the browser may already be gone; terminate below
                    pass
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            for descriptor in (self._command_write, self._response_read):
                try:
                    os.close(descriptor)
                except OSError:
                    pass
            if self.process and self.process.stderr:
                self.process.stderr.close()
            self._profile.cleanup()

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._response_read, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                self._messages.put(json.loads(message))

    def send(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None) -> dict:
        """Send one command and wait for its result, keeping the events that arrive meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        os.write(self._command_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._next_message(deadline, f"{method} (id {self._next_id})")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for_event(self, method: str, session_id: str | None = None) -> dict[str, Any]:
        for event in self._events:
            if event.get("method") == method and (session_id is None or event.get("sessionId") == session_id):
                return event
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._next_message(deadline, method)
            self._events.append(event)
            if event.get("method") == method and (session_id is None or event.get("sessionId") == session_id):
                return event

    def _next_message(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while True:
            try:
                return self._messages.get(timeout=0.2)
            except queue.Empty:
                pass
            exited = self.process is not None and self.process.poll() is not None
            if exited or time.monotonic() > deadline:
                stderr = ""
                if exited and self.process.stderr:
                    stderr = self.process.stderr.read().decode(errors="replace")[-2000:]
                raise TimeoutError(f"no answer from chromium while waiting for {waiting_for}"
                                   f"{' (chromium exited)' if exited else ''}; stderr: {stderr}")

    def events(self, session_id: str) -> list[dict[str, Any]]:
        return [event for event in self._events if event.get("sessionId") == session_id]


@dataclass
class LoadedPage:
    browser: DevToolsPipe
    session_id: str

    def evaluate(self, expression: str) -> Any:
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                   self.session_id)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page, not only the viewport."""
        metrics = self.browser.send("Page.getLayoutMetrics", {}, self.session_id)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                            "clip": clip}, self.session_id)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def report(self) -> PageReport:
        report = PageReport()
        for event in self.browser.events(self.session_id):
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                report.console_errors.append(" ".join(str(arg.get("value", arg.get("description", "")))
                                                      for arg in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                report.exceptions.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                report.log_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
            elif method == "Network.requestWillBeSent":
                report.requested_urls.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                report.failed_requests.append(f"{params.get('errorText')} ({params.get('requestId')})")
        return report


def open_page(browser: DevToolsPipe, url: str, width: int = 1280, height: int = 900) -> LoadedPage:
    """A new tab with console, log, network and page events on, navigated to ``url`` and loaded."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})
    session_id = browser.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
    for domain in ("Runtime", "Log", "Network", "Page"):
        browser.send(f"{domain}.enable", {}, session_id)
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session_id)
    navigation = browser.send("Page.navigate", {"url": url}, session_id)
    if navigation.get("errorText"):
        raise RuntimeError(f"navigation to {url} failed: {navigation['errorText']}")
    browser.wait_for_event("Page.loadEventFired", session_id)
    return LoadedPage(browser, session_id)
