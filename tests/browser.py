"""Headless Chromium for browser tests (Debian's chromium and chromedriver), and serving an app over HTTP.

Without Chromium a browser test fails under CI (CI=true) and is skipped elsewhere with the reason. One Chromium
serves the whole run (starting one costs about 2 s, some forty times a run); each test has a tab of its own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import struct
import tempfile
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def require_chromium() -> None:
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return
    message = "headless Chromium is needed: apt-get install chromium chromium-driver"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


WINDOW_SIZE = (1280, 900)
_browser: Any = None  # the run's Chromium, started by the first browser test


@contextmanager
def chromium() -> Iterator[Any]:
    """A Selenium-driven headless Chromium, in a new tab at the standard window size: the tab's page, its
    sessionStorage (where the dashboard keeps its token) and its dialogs are this test's alone."""
    require_chromium()
    driver = _fresh_tab()
    yield driver


def _fresh_tab() -> Any:
    """The run's Chromium with a new tab in place of the last test's (a browser that no longer answers is replaced)."""
    global _browser
    from selenium.common.exceptions import WebDriverException

    if _browser is not None:
        try:
            return _replace_tab(_browser)
        except WebDriverException:
            _quit(_browser)
    _browser = _start_chromium()
    return _browser


def _replace_tab(driver: Any) -> Any:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert.dismiss()  # a dialog a test left open would block the tab's closing
    except NoAlertPresentException:
        pass
    previous = driver.current_window_handle
    driver.switch_to.new_window("tab")
    fresh = driver.current_window_handle
    driver.switch_to.window(previous)
    driver.close()
    driver.switch_to.window(fresh)
    driver.set_window_size(*WINDOW_SIZE)
    return driver


def _start_chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="leadrelay-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.leadrelay_profile = profile
    atexit.register(_quit, driver)
    return driver


def _quit(driver: Any) -> None:
    try:
        driver.quit()
    except Exception:  # noqa: BLE001 - already gone: nothing left to stop
        pass
    shutil.rmtree(driver.leadrelay_profile, ignore_errors=True)


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def png_distinct_colors(path: Path, sample_rows: int = 200) -> int:
    """How many distinct pixel values a PNG's first rows hold (a blank page has one or two)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunk = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        offset += 12 + length
    width, _height, depth, color_type = struct.unpack(">IIBB", header[:10])
    channels = {2: 3, 6: 4}.get(color_type, 1)
    stride = width * channels * depth // 8
    raw = zlib.decompress(idat)
    colors = set()
    for row in range(min(sample_rows, len(raw) // (stride + 1))):
        line = raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)]  # filtered bytes are enough to tell
        colors.update(line[i : i + channels] for i in range(0, len(line), channels * 7))
    return len(colors)
