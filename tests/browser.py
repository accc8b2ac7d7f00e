"""Open a generated page in Chromium (Playwright) and read it as a person's browser shows it."""

from __future__ import annotations

from pathlib import Path

import pytest


def open_page(chromium_path: str, path: Path, probe: str) -> dict:
    """Load ``path`` from disk, run the JavaScript function ``probe`` on it, and watch the page.

    Returns:
        ``probe`` (what the function returned), ``scripts`` (script elements on the page),
        ``dialogs``, ``errors`` (uncaught page errors) and ``requests`` (every URL fetched).
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    seen: dict = {"dialogs": [], "errors": [], "requests": []}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(path.as_uri())
            seen["probe"] = page.evaluate(probe)
            seen["scripts"] = page.evaluate("document.scripts.length")
        finally:
            browser.close()
    return seen


def assert_inert_and_offline(seen: dict) -> None:
    """No script, no dialog, no error, nothing fetched but the file itself."""
    assert seen["scripts"] == 0 and seen["dialogs"] == [] and seen["errors"] == []
    assert [u for u in seen["requests"] if not u.startswith("file://")] == []
