"""Load a report in headless Chromium and record everything a hostile page could do: scripts, dialogs, requests.

The page is opened from a file:// URL with the network blocked; every request Chromium attempts (other
than the file itself) is recorded and aborted, every dialog is recorded and dismissed, every console
message kept. A script that ran would change `document.title` (the injected payloads set it to PWNED)
or open a dialog, so both are asserted on by the tests.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = os.environ.get("PORTFOLIO_GRADER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-default-apps", "--disable-sync"]


@dataclass
class PageVisit:
    url: str
    title: str = ""
    text: str = ""
    requests: list[str] = field(default_factory=list)  # every request other than the page itself
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    scripts_ran: bool = False  # a probe the page could only set with a script of its own


def visit(path: Path, *, wait_ms: int = 1500) -> PageVisit:
    """Open `path` (an .html file) in headless Chromium with JavaScript enabled, and report what it did."""
    from playwright.sync_api import sync_playwright

    url = path.resolve().as_uri()
    result = PageVisit(url=url)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            context = browser.new_context(java_script_enabled=True, offline=True)
            page = context.new_page()

            def route(route_, request):
                if request.url == url:
                    route_.continue_()
                else:
                    result.requests.append(request.url)
                    route_.abort()

            context.route("**/*", route)
            page.on("dialog", lambda dialog: (result.dialogs.append(dialog.message), dialog.dismiss()))
            page.on("console", lambda message: result.console.append(message.text))
            page.on("request", lambda request: None if request.url == url or request.url in result.requests
                    else result.requests.append(request.url))
            page.goto(url, wait_until="load")
            page.wait_for_timeout(wait_ms)  # timers, onerror handlers, lazy images
            # Open every collapsed section, as a reader would (evidence lives there), then look again.
            # These evaluations are the test's own, through the DevTools protocol, not the page's scripts.
            page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
            page.wait_for_timeout(wait_ms // 2)
            result.title = page.title()
            result.text = page.inner_text("body")
            result.scripts_ran = bool(page.evaluate("() => document.title.includes('PWNED') || !!window.__pwned"))
        finally:
            browser.close()
    return result


def without_csp(html: str) -> str:
    """The page with its Content-Security-Policy removed: shows that escaping alone keeps scripts out."""
    import re

    return re.sub(r"<meta[^>]+Content-Security-Policy[^>]*>", "", html, flags=re.IGNORECASE)
