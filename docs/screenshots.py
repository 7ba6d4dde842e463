"""Screenshots of a real scorecard and class dashboard for the README, taken in headless Chromium.

    python docs/screenshots.py REPORT_FOLDER [DASHBOARD_FOLDER]

REPORT_FOLDER holds a grade's scorecard.html (e.g. `portfolio-grader grade sample_submissions/
beginner-recipes-flask-flawed --out /tmp/r` then /tmp/r/<name>/); DASHBOARD_FOLDER a batch's index.html.
Writes docs/scorecard.png (the first screen: verdict, fix list, criteria) and docs/scorecard-finding.png (the
first high-severity finding, unfolded, with its evidence and curl lines), and docs/dashboard.png. The pages are checked
as the tests check them: no console error, no request off the page.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent
VIEWPORT = {"width": 1280, "height": 900}


def shoot(page_path: Path, shots: list[tuple[str, str | None]]) -> None:
    """Open the page; for each (file, selector) screenshot the viewport (None) or the element's box."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("request", lambda r: problems.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            page.goto(page_path.as_uri(), wait_until="load")
            for name, selector in shots:
                if selector is None:
                    page.screenshot(path=str(DOCS / name))
                    continue
                target = page.locator(selector).first
                target.evaluate("e => { for (let d = e.closest('details'); d; d = d.parentElement.closest('details'))"
                                " d.open = true; }")  # the criterion's evidence, folded by default
                target.scroll_into_view_if_needed()
                target.screenshot(path=str(DOCS / name))
            if problems:
                raise SystemExit(f"{page_path}: {problems}")
        finally:
            browser.close()


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    report = Path(argv[0])
    shoot(report / "scorecard.html", [("scorecard.png", None), ("scorecard-finding.png", "article.finding.sev-high")])
    if len(argv) > 1:
        shoot(Path(argv[1]) / "index.html", [("dashboard.png", None)])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
