"""Headless Debian Chromium driven by Playwright, for the browser tests (never a browser download)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("LABINTERP_CHROMIUM", "/usr/bin/chromium"))
# As the machine notes advise: no sandbox as root, and no background traffic to a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"]
INSTALL_HINT = "as root, `make test` installs it (apt-get install -y chromium); or set LABINTERP_CHROMIUM"
# axe-core from the npm registry (package-lock.json), installed by `make test` with `npm ci`.
AXE_JS = Path(os.environ.get("LABINTERP_AXE_JS",
                            Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"))


def why_no_browser() -> str | None:
    """The reason the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: install the test extras (`make test` does)"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(str(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM}; {INSTALL_HINT}"
    return None


def why_no_axe() -> str | None:
    """The reason the axe tests cannot run here (besides the browser's own), or None when they can."""
    if not AXE_JS.is_file():
        how = "`make test` runs `npm ci` for it" if shutil.which("npm") else "node and npm are missing"
        return f"axe-core not found at {AXE_JS} ({how}; or set LABINTERP_AXE_JS to an axe.min.js)"
    return None


@pytest.fixture(scope="session")
def browser():
    reason = why_no_browser()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def fresh_page(browser, **options):
    """A page in a context of its own (closed afterwards), 1100x900, with a 15 s default timeout."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, **options)
    p = context.new_page()
    p.set_default_timeout(15_000)
    try:
        yield p
    finally:
        context.close()


@pytest.fixture()
def page(browser):
    """A fresh page with JavaScript off: the form must work without it."""
    yield from fresh_page(browser, java_script_enabled=False)


def accessibility_nodes(page, selector: str) -> list[dict]:
    """Chromium's own accessibility tree (over CDP) for each element matching selector, in page order:
    the role, accessible name and description that a screen reader's list of form fields and voice
    control use.
    Works with JavaScript off (the tree is the browser's, not a script's)."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        out = []
        for node_id in cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector})["nodeIds"]:
            flat = cdp.send("DOM.getAttributes", {"nodeId": node_id})["attributes"]
            ax = cdp.send("Accessibility.getPartialAXTree", {"nodeId": node_id, "fetchRelatives": False})["nodes"][0]
            out.append({"attributes": dict(zip(flat[::2], flat[1::2])), "role": ax.get("role", {}).get("value"),
                        "name": ax.get("name", {}).get("value", ""), "ignored": ax.get("ignored", False),
                        "description": ax.get("description", {}).get("value", "")})
        return out
    finally:
        cdp.detach()


def all_accessible_names(page) -> list[str]:
    """Every name and value in the page's whole accessibility tree (what assistive technology is given)."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    return [str(n[k]["value"]) for n in nodes for k in ("name", "value", "description") if n.get(k, {}).get("value")]
