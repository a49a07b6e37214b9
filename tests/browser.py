"""A real browser for the page tests: Debian's chromium driven by Selenium through chromium-driver, headless, and a
live server thread over the committed test data. Shared by the browser test modules (one browser per module).

No browser, no pass: if chromium cannot start, the test fails and says what to install (`.ci/run` installs it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread
from django.test.utils import override_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
INSTALL_HINT = "apt-get install -y chromium chromium-driver (bash .ci/run does it when they are missing)"


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


def browser_problem() -> str | None:
    """Why no browser can be started here, or None when one can (it is started and stopped)."""
    try:
        _driver().quit()
    except Exception as exc:  # noqa: BLE001 - any failure to start is the answer, with its text
        return (
            f"cannot start Chromium ({CHROMIUM}, {CHROMEDRIVER}): {str(exc).strip()[:300]}. Install it: {INSTALL_HINT}"
        )
    return None


def start_chromium():
    try:
        return _driver()
    except Exception as exc:  # noqa: BLE001 - fail with what to install, whatever selenium raised
        pytest.fail(f"cannot start Chromium ({CHROMIUM}, {CHROMEDRIVER}): {exc}. Install it: {INSTALL_HINT}", False)


if __name__ == "__main__":  # `python -m tests.browser`: make test's check before the suite
    import sys

    problem = browser_problem()
    if problem:
        print(f"make test: the browser tests need Chromium and chromium-driver: {problem}", file=sys.stderr)
        sys.exit(1)


@contextmanager
def live_server() -> Iterator[str]:
    """A server thread answering on a free port with the project's WSGI app and the static files; yields its URL."""
    with override_settings(ALLOWED_HOSTS=["localhost", "127.0.0.1", "testserver"]):
        thread = LiveServerThread("localhost", StaticFilesHandler, port=0)  # static files from the finders
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        try:
            yield f"http://localhost:{thread.port}"
        finally:
            thread.terminate()
            thread.join()


def console_errors(driver) -> list[str]:
    """SEVERE entries of the browser console since the last call (a page's JavaScript or resource errors)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
