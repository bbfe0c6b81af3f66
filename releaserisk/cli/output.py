"""Output formats of every command: text, JSON, CSV and GitHub Actions, and progress displays.

JSON goes to stdout with no NaN (jq and most parsers refuse it); CSV with no text cell a
spreadsheet would run as a formula (:func:`releaserisk.escape.csv_text`); text with control
and bidi characters shown as escapes; diagnostics go to stderr, escaped the same way. The
GitHub format appends markdown to the step summary and writes workflow commands
(annotations) with their data escaped as the Actions toolkit does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from releaserisk.escape import (
    csv_text,
    json_records,
    json_safe,
    plain_text,
    stop_commands,
    terminal_text,
    workflow_command,
)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 row", "2,070 rows", "2 fixes": a count with its noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as JSON or ``text`` depending on ``--format``."""
    if getattr(args, "format", "text") == "json":
        sys.stdout.write(json.dumps(json_safe(payload), indent=2, default=str, allow_nan=False) + "\n")
    else:  # a CI log reads every line: user text must not start one of its own (a ::error:: command)
        sys.stdout.write(plain_text(text.rstrip("\n")) + "\n")


def emit_frame(args: argparse.Namespace, frame, text: str, key: str = "rows", **payload: Any) -> None:
    """A table: CSV with ``--format csv``, else JSON records or ``text``."""
    if getattr(args, "format", "text") == "csv":
        write_csv(frame)
    else:
        emit(args, {**payload, key: json_records(frame)}, text)


def write_csv(frame) -> None:
    """A table as CSV on stdout: every text cell that could start a spreadsheet formula neutralised."""
    sys.stdout.write(csv_text(frame))


def diagnostic(text: str) -> None:
    """A message on stderr (``warning: …``): its user text can neither start a line nor reorder what is shown."""
    sys.stderr.write(plain_text(text.rstrip("\n")) + "\n")


def hint(message: str) -> None:
    """A one-line hint on stderr."""
    diagnostic(f"hint: {message}")


def table_listing(counts: dict[str, int]) -> str:
    """Table names and row counts, aligned."""
    width = max(map(len, counts), default=0)
    return "\n".join(f"  {name:<{width}}  {rows:>10,}" for name, rows in counts.items())


def github_output(markdown: str, annotations: list[tuple[str, str]]) -> None:
    """GitHub Actions: append markdown to the step summary, print annotations to stdout.

    ``markdown`` must have its user text escaped for its sink already (:mod:`releaserisk.escape`:
    table cells, fenced blocks); printed to stdout (no step summary) it is enclosed in
    ``stop-commands`` so no line of it runs as a workflow command. Annotation messages are
    escaped here.
    """
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n")
    else:
        sys.stdout.write(stop_commands(markdown))
    for level, message in annotations:
        sys.stdout.write(workflow_command(level, message) + "\n")


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw a progress display: text output with stderr on a terminal."""
    return getattr(args, "format", "text") == "text" and sys.stderr.isatty()


def commit_progress() -> Callable[..., None]:
    """A rich progress display on stderr: commits processed and their rate."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.completed:,} commits  {task.fields[rate]}"),
        TimeElapsedColumn(),
        transient=True,
    )
    task = progress.add_task("ingest", total=None, rate="")
    started = time.perf_counter()
    progress.start()

    def update(done: int, finished: bool = False) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        progress.update(task, completed=done, rate=f"{rate:,.0f}/s")
        if finished:
            progress.stop()

    return update


def org_progress(total: int) -> Callable[..., None]:
    """A rich progress bar on stderr for an organisation's ingest: one line per finished repository."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("repositories"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    task = progress.add_task("org", total=total)
    progress.start()

    def update(outcome, done: int, total: int) -> None:
        name = escape(terminal_text(outcome.repo))
        if outcome.status == "failed":
            progress.console.print(f"[red]failed[/red]    {name}: {escape(terminal_text(outcome.error or ''))}")
        elif outcome.status == "ingested":
            progress.console.print(
                f"ingested  {name}: {outcome.new_commits:,} new commits ({outcome.total_commits:,}) "
                f"in {outcome.seconds:.1f} s"
            )
        progress.update(task, completed=done)
        if done >= total:
            progress.stop()

    return update


def bar_progress(label: str) -> Callable[[int, int], None]:
    """A rich progress bar on stderr (done of total), e.g. SZZ blames of a repository."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
    task = progress.add_task(label, total=None)
    progress.start()

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)
        if done >= total:
            progress.stop()

    return update
