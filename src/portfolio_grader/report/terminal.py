"""A one-screen summary of a Scorecard for the terminal.

rich decides about colour: none when the output is not a terminal or NO_COLOR is set. Text that came
from a submission (its name, repo, ref) or from a rubric is escaped for rich markup, stripped of control
characters (no ANSI sequences from a hostile repo name) and printed without emoji substitution.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..models import Scorecard
from .html import format_points, points_text, short_commit
from .fixes import fixes, see_more
from .stack import for_stack
from .verdict import verdict_of

_STATUS_STYLE = {
    "pass": ("passed", "green"),
    "partial": ("partial", "yellow"),
    "fail": ("failed", "red"),
    "not_evaluated": ("not evaluated", "dim"),
    "not_applicable": ("not applicable", "dim"),
}


def clean(text: object, limit: int = 200) -> str:
    """One printable line: control and format characters dropped, whitespace collapsed, length bounded."""
    chars = []
    for ch in str(text):
        category = unicodedata.category(ch)
        if ch.isspace():
            chars.append(" ")
        elif category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            chars.append(ch)
    line = " ".join("".join(chars).split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:  # at a word boundary, never mid-word (a single giant word is still cut)
        cut = cut[:space].rstrip(" ,;:")
    return cut + "…"


def _e(text: object, limit: int = 200) -> str:
    """Submission or rubric text, safe inside rich markup."""
    return escape(clean(text, limit))


def _p(text: object, limit: int = 200) -> str:
    """Rubric or check prose, safe inside rich markup, its `code` spans shown styled without the backticks."""
    line = clean(text, limit)
    parts = line.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick (or one cut off): the last one is literal
        parts[-2:] = ["`".join(parts[-2:])]
    return "".join(f"[cyan]{escape(part)}[/]" if i % 2 else escape(part) for i, part in enumerate(parts))


def _m(markup: str) -> Text:
    return Text.from_markup(markup, emoji=False)


def default_console() -> Console:
    return Console(highlight=False, emoji=False, no_color=bool(os.environ.get("NO_COLOR")) or None)


def print_summary(
    scorecard: Scorecard,
    console: Console | None = None,
    paths: Mapping[str, Path | str] | None = None,
) -> None:
    """Print the verdict, score, gates, rubric, top three fixes, criteria counts and where reports went."""
    console = console or default_console()
    sc = for_stack(scorecard)  # hints fitted to the detected stack

    judged = verdict_of(sc)
    verdict = f"[bold green]{judged.headline.upper()}[/]" if judged.passed else f"[bold red]{judged.headline.upper()}[/]"
    score_style = "bold green" if judged.passed else "bold red"

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    grid.add_row("Score", _m(f"[{score_style}]{format_points(sc.score)}/100[/]  "
                             f"pass mark {format_points(sc.pass_mark)}  {verdict}"))
    if judged.gates_met:
        gates = "[green]met[/]"
    else:
        gates = "[red]not met[/]" + (f": {_e('; '.join(judged.gate_names), 160)}" if judged.gate_names else "")
    grid.add_row("Gates", _m(gates))
    if sc.ladder:
        steps = []
        for step in sc.ladder:
            if step.status == "reached":
                steps.append(f"[green]{_e(step.tier, 40)} ✓[/]")
            elif step.status == "missed":
                steps.append(f"[red]{_e(step.tier, 40)}: {len(step.missing_gates)} gate(s) missing[/]")
            else:
                steps.append(f"[dim]{_e(step.tier, 40)}: not graded[/]")
        grid.add_row("Ladder", _m(", ".join(steps)))
    grid.add_row("Rubric", _m(f"{_e(sc.rubric.name, 60)} {_e(sc.rubric.version, 40)}  [dim]tier[/] {_e(sc.tier, 40)}"))

    counts = {status: 0 for status in _STATUS_STYLE}
    for criterion in sc.criteria:
        counts[criterion.status] = counts.get(criterion.status, 0) + 1
    parts = [f"[{style}]{counts[status]} {label}[/]" for status, (label, style) in _STATUS_STYLE.items()
             if counts[status] or status != "not_applicable"]  # most grades have none: not worth a "0" every time
    grid.add_row("Criteria", _m(" · ".join(parts) + f"  [dim]of {len(sc.criteria)}[/]  {points_text(sc.criteria)}"))

    source_bits = [_e(sc.source.repo or sc.source.url or "", 120)]
    if sc.source.ref:
        source_bits.append(f"[dim]@[/]{_e(sc.source.ref, 60)}")
    if sc.source.commit:
        source_bits.append(f"[dim]({_e(short_commit(sc.source.commit), 40)})[/]")
    if any(source_bits):
        grid.add_row("Source", _m(" ".join(b for b in source_bits if b)))

    builder = sc.runtime.get("builder")
    status = sc.runtime.get("status")
    if status or builder:
        runtime = _e(status or "unknown", 40)
        if status and status != "running":
            runtime = f"[red]{runtime}[/]"
        elif sc.runtime.get("kind") in ("docker", "compose"):  # the grade removed its container on the way out
            runtime = "ran, stopped when the grade ended"
        grid.add_row("Runtime", _m(runtime + (f"  [dim]built with[/] {_e(builder, 80)}" if builder else "")))

    console.print()
    console.print(_m(f"[bold]{_e(sc.name, 120)}[/]  [dim]portfolio-grader {_e(sc.grader_version, 40)}[/]"))
    console.print(grid)
    _print_since(sc, console)

    items = fixes(sc)[:3]
    unseen = see_more(sc)
    console.print()
    if items:
        console.print(_m("[bold]Fix these first[/]"))
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, justify="right")
        table.add_column(no_wrap=True, justify="right", style="green")
        table.add_column(overflow="fold")
        for number, item in enumerate(items, 1):
            fix = item.fix
            body = f"[bold]{_e(fix.title, 120)}[/]" + (" [red](gate)[/]" if fix.gate else "")
            if fix.problem:
                where = f"on {_e(fix.operation, 100)}: " if fix.operation else ""
                body += f"\n{where}{_p(fix.problem, 240)}"
            if item.also:
                body += f"\n[dim]One cause: it {_e(item.also_text, 200)}.[/]"
            if fix.hint:
                body += f"\n[dim]{_p(fix.hint, 240)}[/]"
            table.add_row(f"{number}.", f"+{format_points(fix.points)} pts", _m(body))
        console.print(table)
    elif not unseen:
        console.print(_m("[green]Nothing to fix: every criterion earned its full points.[/]"))
    else:
        console.print(_m("[green]Nothing to fix in what the grader saw.[/]"))
    if unseen:
        one = len(unseen) == 1
        console.print()
        console.print(_m(f"[bold]Help the grader see more[/]  [dim]{len(unseen)} criteri{'on' if one else 'a'} not "
                         f"evaluated (no points either way); the scorecard lists the portfolio-grader.yaml lines "
                         f"that would let {'it' if one else 'them'} run[/]"))
        for blind in unseen[:3]:
            reason = f" [dim]({_p(blind.reasons[0], 160)})[/]" if blind.reasons else ""
            console.print(_m(f"  ○ {_e(blind.criterion.title, 120)}{reason}"))

    if sc.notes:
        console.print(_m(f"[dim]{len(sc.notes)} grader note{'s' if len(sc.notes) != 1 else ''} in the scorecard "
                         "(what could not be checked and why)[/]"))

    if paths:
        console.print()
        written = Table.grid(padding=(0, 2))
        written.add_column(style="bold", no_wrap=True)
        written.add_column(overflow="fold")
        for label, path in paths.items():
            written.add_row(_m(_e(label.upper() if len(label) <= 4 else label, 20)), _m(_e(path, 400)))
        console.print(_m("[bold]Scorecard written to[/]"))
        console.print(written)
    console.print()


def _print_since(sc: Scorecard, console: Console) -> None:
    """"Since last grade": the score delta and the criteria that moved, when the grade had a --baseline."""
    from .baseline import baseline_of

    diff = baseline_of(sc)
    if diff is None:
        return
    delta = diff.score_delta
    style = "green" if delta > 0 else "red" if delta < 0 else "dim"
    was = f"  [dim]previous grade {_e(short_commit(diff.previous_commit), 40)}[/]" if diff.previous_commit else ""
    console.print()
    console.print(_m(f"[bold]Since last grade[/]  {format_points(diff.previous_score)} → {format_points(sc.score)} "
                     f"[{style}]({'+' if delta > 0 else ''}{format_points(delta)})[/]{was}"))
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_column(no_wrap=True, justify="right")
    for mark, style, changes in (("↑", "green", diff.improved), ("↓", "red", diff.regressed)):
        for ch in changes[:8]:
            table.add_row(_m(f"[{style}]{mark}[/]"),
                          _m(f"{_e(ch.title, 100)} [dim]{ch.before.replace('_', ' ')} → {ch.after.replace('_', ' ')}[/]"),
                          _m(f"[{style}]{'+' if ch.delta > 0 else ''}{format_points(ch.delta)}[/]"))
    if diff.improved or diff.regressed:
        console.print(table)
    kinds = []
    if diff.new_kinds:
        kinds.append("[red]new[/] " + ", ".join(_e(k.kind, 60) for k in diff.new_kinds))
    if diff.fixed_kinds:
        kinds.append("[green]fixed[/] " + ", ".join(_e(k.kind, 60) for k in diff.fixed_kinds))
    if kinds:
        console.print(_m("  ".join(kinds)))
    if diff.unchanged:
        console.print(_m("[dim]Nothing changed since the last grade.[/]"))
