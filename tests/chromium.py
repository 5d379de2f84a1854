"""Headless Chromium for the tests that open HTML pages (the run report, the browse page): a
Chrome DevTools Protocol client over --remote-debugging-pipe, console-error collection, typing
and full-page screenshots. Tests that use it skip where Debian's chromium is absent."""
from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser")
                 if shutil.which(name)), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--window-size=1280,900")


class DevTools:
    """The few Chrome DevTools Protocol calls the tests need, over --remote-debugging-pipe
    (requests on fd 3, replies on fd 4, NUL-separated JSON): no websocket package needed."""

    def __init__(self, profile: Path, timeout: float = 60.0):
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()

        def wire_pipes() -> None:  # in the child, before exec
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(3, 4),
            preexec_fn=wire_pipes)
        os.close(to_browser)
        os.close(from_browser)
        self.timeout, self.events, self._buffer, self._id = timeout, [], b"", 0

    def _next_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._id += 1
        request = {"id": self._id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        os.write(self._write, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._next_message(deadline)
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._next_message(deadline))
        return next(e for e in self.events if e.get("method") == method)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._read)
        os.close(self._write)


class Page:
    """One loaded page in a DevTools session: evaluate script, type, screenshot, read errors."""

    def __init__(self, browser: DevTools, session: str):
        self.browser, self.session = browser, session

    def call(self, method: str, **params) -> dict:
        return self.browser.call(method, self.session, **params)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (JSON-serialisable), evaluated in the page."""
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                          awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def type(self, text: str) -> None:
        """Type ``text`` into the focused element, as an input method would."""
        self.call("Input.insertText", text=text)

    def press_enter(self) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                      windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)

    def screenshot(self, width: int | None = None, height: int | None = None,
                   scale: float = 1) -> bytes:
        """A PNG of the page from its top: the whole page, or ``width`` × ``height`` CSS
        pixels, drawn ``scale`` times as large."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width or size["width"],
                               "height": min(height or size["height"], size["height"]),
                               "scale": scale})
        return base64.b64decode(shot["data"])

    def errors(self) -> list[str]:
        """Console errors so far: uncaught exceptions, console.error, failed loads."""
        errors = []
        for event in self.browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(f"{details.get('text', 'exception')} "
                              f"{details.get('exception', {}).get('description', '')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                                 "assert"):
                errors.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return errors


@contextmanager
def open_page(page: Path, profile: Path, width: int | None = None) -> Iterator[Page]:
    """``page`` loaded in headless Chromium (its load event fired); ``width`` sets the viewport
    width in CSS pixels."""
    browser = DevTools(profile)
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target,
                               flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session)
        if width:
            browser.call("Emulation.setDeviceMetricsOverride", session, width=width,
                         height=900, deviceScaleFactor=1, mobile=False)
        browser.call("Page.navigate", session, url=page.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        yield Page(browser, session)
    finally:
        browser.close()


def render_page(page: Path, profile: Path) -> tuple[list[str], bytes]:
    """Load ``page`` in headless Chromium; return its console errors (uncaught exceptions,
    console.error, failed loads) and a full-page PNG screenshot."""
    with open_page(page, profile) as opened:
        png = opened.screenshot()
        return opened.errors(), png


def assert_not_blank(png: bytes, min_height: int = 900) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    pixels = np.asarray(image, dtype=np.float64)
    assert image.height >= min_height, f"screenshot only {image.height} px high"
    assert pixels.std() > 10, f"screenshot is nearly uniform (std {pixels.std():.1f})"
    assert (pixels < 200).mean() > 0.01, "screenshot has almost no dark pixels"
