"""A real headless browser for the tests: Debian's `chromium` driven through `chromium-driver`
(Selenium, never its driver download: nothing is fetched at run time).

Absent locally, the tests that need it skip saying what to install; with
``GWI_REQUIRE_BROWSER=1`` (set by `.ci/run`, which installs both packages) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "chromium-driver")


def _find(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    for path in extra:
        if Path(path).is_file():
            return path
    return None


def _unavailable(why: str) -> None:
    if os.environ.get("GWI_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GWI_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(f"{why}: `apt-get install chromium chromium-driver` (and pip install selenium)"
                " to run the browser tests")


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless Chromium (a Selenium WebDriver) with a profile in the test's temp folder."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed")
    binary = _find(CHROMIUM)
    driver_path = _find(DRIVERS, ("/usr/lib/chromium/chromedriver",))
    if binary is None or driver_path is None:
        _unavailable("chromium or its driver is not installed")
    assert binary is not None and driver_path is not None
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,2000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
