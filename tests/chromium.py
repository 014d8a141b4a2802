"""Debian's chromium started headless by playwright, for the replay page's tests and benchmark (no downloads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the dev extra brings it
    sync_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
#: Offline and quiet: no GPU, no QUIC, no first-run, update, sync or background traffic.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = "install with `make setup-browser` (apt-get install -y chromium chromium-driver, as root, and the dev extra)"


def missing() -> list[str]:
    """What this machine lacks to drive the browser; empty when it can."""
    return [what for what, absent in ((str(CHROMIUM), not CHROMIUM.exists()),
                                      ("the playwright package", sync_playwright is None)) if absent]


def launch(playwright: Any) -> Any:
    """The system chromium, headless; playwright's own browser downloads are never used."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
