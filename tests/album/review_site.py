"""A real review server (uvicorn on a free port, in a thread) and a real headless Chromium.

The server is `create_app` with the tests' loaded pipeline, so no model loads
twice; the browser is Debian's `chromium` driven by `chromium-driver` through
Selenium. Under CI=true a missing browser fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline
from facerec.server.app import ServerConfig, create_app
from facerec.server.service import FaceService

from ..served import free_port


@contextmanager
def review_server(db: Path, pipeline: Pipeline, *, sign_in: bool = False) -> Iterator[str]:
    """The URL of a review server over gallery `db`, stopped on exit."""
    import uvicorn

    fr = FaceRec(db, pipeline=pipeline)
    service = FaceService(fr)
    app = create_app(ServerConfig(db=db, web_sign_in=sign_in), service)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", workers=1)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("review server not up in 30 s")
            time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        fr.close()


def chromedriver() -> str:
    path = shutil.which("chromedriver")
    browser = shutil.which("chromium")
    if path is None or browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver are needed (.ci/run installs them)")
        pytest.skip(
            "chromium-driver is not installed (apt-get install -y chromium chromium-driver)"
        )
    return path


@contextmanager
def browser(tmp: Path, width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium of its own profile, closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--window-size={width},{height}",
        f"--user-data-dir={tmp}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver()), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def faces_of(db: Path, name: str) -> dict[int, str]:
    """Face id -> match kind of the album faces of `name`."""
    return dict(
        rows(
            db,
            "SELECT f.id, f.match_kind FROM album_faces f "
            "JOIN identities i ON i.id = f.identity_id WHERE i.name = ?",
            name,
        )
    )


def people(db: Path) -> set[str]:
    return {n for (n,) in rows(db, "SELECT name FROM identities")}


def click_and_wait(driver: Any, element: Any) -> None:
    """Click a submit button and wait for the next page (the server has answered by then)."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element("css selector", "html")
    element.click()
    WebDriverWait(driver, 60).until(ec.staleness_of(old))
    # Stale means the next page has started, not finished: wait for it to be whole.
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
