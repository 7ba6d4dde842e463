"""The class dashboard (index.html): one self-contained, script-free page rendered from the summary.

Same rules as the scorecard: autoescape always on, nothing from a submission or a roster marked safe,
a Content-Security-Policy that allows no script and no fetch. The score histogram is inline SVG whose
geometry is computed here, so the template only lays it out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined

from ..report.html import STATUS_ICONS, STATUS_LABELS, format_points, format_time

TEMPLATE = "dashboard.html.j2"
CHART_W, CHART_H, CHART_PAD_L, CHART_PAD_B, CHART_PAD_T = 560, 200, 34, 28, 12


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str
    passing: bool  # the bin lies at or above the pass mark


def chart(distribution: list[dict], pass_mark: float | None) -> dict:
    """Bars, axis ticks and the pass-mark line of the score histogram, in SVG user units."""
    plot_w, plot_h = CHART_W - CHART_PAD_L - 8, CHART_H - CHART_PAD_B - CHART_PAD_T
    top = max([b["count"] for b in distribution] + [1])
    step = plot_w / max(len(distribution), 1)
    bars = []
    for i, b in enumerate(distribution):
        height = plot_h * b["count"] / top
        bars.append(Bar(x=round(CHART_PAD_L + i * step + 2, 1), y=round(CHART_PAD_T + plot_h - height, 1),
                        width=round(step - 4, 1), height=round(height, 1), count=b["count"],
                        label=f"{b['from']}–{b['to']}", passing=pass_mark is not None and b["from"] >= pass_mark))
    ticks = sorted({0, top, (top + 1) // 2}) if top > 1 else [0, 1]
    return {
        "width": CHART_W, "height": CHART_H, "bars": bars, "base_y": CHART_PAD_T + plot_h, "left": CHART_PAD_L,
        "right": CHART_W - 8,
        "ticks": [{"value": t, "y": round(CHART_PAD_T + plot_h - plot_h * t / top, 1)} for t in ticks],
        "pass_x": None if pass_mark is None else round(CHART_PAD_L + plot_w * pass_mark / 100, 1),
        "pass_mark": pass_mark,
    }


def href(path: str | None) -> str | None:
    """A relative link to a file of the batch folder, every segment percent-encoded."""
    if not path:
        return None
    return "/".join(quote(part) for part in path.split("/"))


def web_link(url: str) -> str | None:
    """Only http(s) repository URLs become links; anything else is shown as text."""
    return url if url.startswith(("https://", "http://")) else None


@functools.cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("portfolio_grader", "batch/templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pts"] = format_points
    env.filters["when"] = format_time
    env.filters["href"] = href
    env.globals["web_link"] = web_link
    env.globals["status_labels"] = STATUS_LABELS
    env.globals["status_icons"] = STATUS_ICONS
    return env


def render_dashboard(summary: dict, generated_at: str = "") -> str:
    names = {row["id"]: row["name"] for row in summary["students"]}
    return environment().get_template(TEMPLATE).render(
        s=summary, t=summary["totals"], chart=chart(summary["distribution"], summary.get("pass_mark")),
        names=names, generated_at=generated_at,
    )
