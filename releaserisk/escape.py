"""Escaping for every sink a face writes user-controlled text to: one function per sink.

Commit subjects, metric names, service names and reasons come from users' files and
repositories. Written unescaped they can forge CI output: a carriage return in a
commit subject ends a ``::warning::`` line and starts a ``::error::`` command of its
own (the Actions runner splits lines at ``\\r`` too), a pipe breaks a markdown table
row, a run of backticks closes a code fence and lets raw HTML through into the step
summary. Faces (the CLI, the report) pass every such string through the function of
its sink:

==========================  ===================================================
sink                        function
==========================  ===================================================
workflow-command message    :func:`command_data` (the Actions toolkit's ``escapeData``)
workflow-command property   :func:`command_property` (``escapeProperty``)
a whole workflow command    :func:`workflow_command`
untrusted text on stdout    :func:`stop_commands` (the runner's ``stop-commands``)
one line of plain text      :func:`one_line`
text output on stdout       :func:`plain_text` (lines only where the face broke them)
markdown table cell         :func:`markdown_cell`
markdown fenced block       :func:`fenced_block`
HTML text or attribute      :func:`html_text`
JSON                        :func:`json_safe` (NaN and infinities become null)
==========================  ===================================================

Sources: the Actions toolkit's ``packages/core/src/command.ts`` (``escapeData``,
``escapeProperty``); GitHub's "Workflow commands" documentation (``stop-commands``);
CommonMark 0.31 section 4.5 (a fence closes only with at least as many backticks as
it opened with) and GitHub Flavored Markdown's tables (``\\|`` inside a cell).
"""

from __future__ import annotations

import html
import math
import re
import secrets
from collections.abc import Mapping
from typing import Any

__all__ = [
    "LINE_BREAKS",
    "command_data",
    "command_property",
    "fenced_block",
    "html_text",
    "json_records",
    "json_safe",
    "markdown_cell",
    "one_line",
    "plain_text",
    "stop_commands",
    "workflow_command",
]

#: Every character Python's ``str.splitlines`` (and so a permissive reader) treats as a
#: line break; the runner splits at ``\r`` and ``\n``, renderers at some of the others.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = re.compile(f"[{re.escape(LINE_BREAKS)}]")
_BACKTICKS = re.compile(r"`+")


def command_data(text: Any) -> str:
    """Escape a workflow command's message (the part after ``::name::``).

    Parameters
    ----------
    text : Any
        Converted with ``str``.

    Returns
    -------
    str
        ``%`` → ``%25``, ``\\r`` → ``%0D``, ``\\n`` → ``%0A``, exactly as the Actions
        toolkit's ``escapeData``; the runner decodes them back, so the message shows
        as written but cannot end the command's line.
    """
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def command_property(text: Any) -> str:
    """Escape a workflow command's property value (``file=…,title=…``).

    Parameters
    ----------
    text : Any
        Converted with ``str``.

    Returns
    -------
    str
        As :func:`command_data`, and ``:`` → ``%3A``, ``,`` → ``%2C`` (the toolkit's
        ``escapeProperty``): a colon would end the properties, a comma start another.
    """
    return command_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(name: str, message: Any, **properties: Any) -> str:
    """One workflow command line, e.g. ``::error title=x::message``, without the newline.

    Parameters
    ----------
    name : str
        The command (``error``, ``warning``, ``notice``, ``group``…); our own constant.
    message : Any
        User-controlled text, escaped with :func:`command_data`.
    **properties : Any
        Property values, escaped with :func:`command_property`; None values are left out.

    Returns
    -------
    str
        The command, free of line breaks.
    """
    given = ",".join(f"{key}={command_property(value)}" for key, value in properties.items() if value is not None)
    return f"::{name}{' ' + given if given else ''}::{command_data(message)}"


def stop_commands(text: str, token: str | None = None) -> str:
    """Text that goes to a runner's stdout with workflow commands switched off around it.

    Markdown printed to stdout (no ``GITHUB_STEP_SUMMARY``) or a summary quoting commit
    subjects may hold a line beginning with ``::``; between ``::stop-commands::TOKEN``
    and ``::TOKEN::`` the runner executes none.

    Parameters
    ----------
    text : str
        Any text, several lines allowed.
    token : str, optional
        The resume token; default a fresh random one (it must not be guessable from
        the text, or the text could resume commands itself).

    Returns
    -------
    str
        ``text`` between the two commands, newline-terminated.
    """
    token = token or secrets.token_hex(16)
    while token in text:  # only a caller-given token can collide
        token = secrets.token_hex(16)
    return f"::stop-commands::{token}\n{text.rstrip(LINE_BREAKS)}\n::{token}::\n"


def one_line(text: Any) -> str:
    """Plain text on one line: every line break becomes its visible escape (``\\n``, ``\\r``…).

    Parameters
    ----------
    text : Any
        Converted with ``str``.

    Returns
    -------
    str
        Without any character of :data:`LINE_BREAKS`, so it cannot start a line a CI
        runner would read as a command, and never beginning with ``::`` (a leading
        ``\\`` is added): printed alone on a line it is no command either. Backslashes
        are doubled so the escape is reversible.
    """
    return _no_command(_BREAK.sub(_visible, str(text).replace("\\", "\\\\")))


def plain_text(text: str) -> str:
    """Multi-line text for a terminal or a CI log, with lines only where the face put ``\\n``.

    A face's text output quotes commit subjects and metric names; a CI runner reads every
    line of it, and ``\\r`` (or a newline inside a subject) would start a line of the
    subject's own, possibly a ``::error::`` command.

    Parameters
    ----------
    text : str
        The face's text; its ``\\n`` are the intended line ends.

    Returns
    -------
    str
        Each ``\\n``-separated line through :func:`one_line` (other breaks escaped, no
        line beginning with ``::``); the ``\\n`` kept. Unlike :func:`one_line`,
        backslashes are left alone (text output is read, not decoded).
    """
    return "\n".join(_no_command(_BREAK.sub(_visible, line)) for line in text.split("\n"))


def _visible(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def _no_command(line: str) -> str:
    body = line.lstrip()
    return line[: len(line) - len(body)] + "\\" + body if body.startswith("::") else line


def markdown_cell(text: Any) -> str:
    """A value for one cell of a GitHub-flavoured markdown table.

    Parameters
    ----------
    text : Any
        Converted with ``str``; None gives an empty cell.

    Returns
    -------
    str
        HTML-escaped (``<`` ``>`` ``&`` ``"`` ``'``), pipes and backticks backslash-escaped,
        backslashes doubled, line breaks as ``<br>``: one table row whatever the text.
    """
    if text is None:
        return ""
    escaped = html.escape(str(text), quote=True).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return _BREAK.sub("<br>", escaped.replace("\r\n", "\n"))


def fenced_block(text: str, info: str = "") -> str:
    """``text`` in a markdown code fence it cannot close.

    Parameters
    ----------
    text : str
        Shown verbatim (markdown and HTML inside a fence are not interpreted).
    info : str
        The info string (a language name); our own constant, not user text.

    Returns
    -------
    str
        The block, newline-terminated; the fence is one backtick longer than the
        longest run of backticks in ``text`` (at least three), per CommonMark 4.5.
    """
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}\n"


def html_text(text: Any) -> str:
    """Escape text for HTML element content or a quoted attribute value.

    Parameters
    ----------
    text : Any
        Converted with ``str``.

    Returns
    -------
    str
        ``&`` ``<`` ``>`` ``"`` ``'`` as character references (:func:`html.escape`).
    """
    return html.escape(str(text), quote=True)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float, however deeply nested, as None.

    NaN is not JSON (RFC 8259 has no such number; jq and most parsers refuse it): a
    missing number is ``null``. Mappings become dicts and tuples lists; numpy and pandas
    scalars are converted to Python ones; ``pd.NA`` and ``NaT`` become None.

    Parameters
    ----------
    value : Any
        A scalar, mapping or list, nested to any depth.

    Returns
    -------
    Any
        The same structure, JSON-serialisable wherever the input was (plus NaN-free).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | bool | int) or value is None:
        return value
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):  # numpy scalars
        return json_safe(value.item())
    if getattr(value, "ndim", None) and callable(getattr(value, "tolist", None)):  # numpy arrays
        return json_safe(value.tolist())
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return value


def json_records(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame's rows as JSON-ready dicts, for every ``to_dict()`` and ``--format json``.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    list of dict
        One dict per row: missing values (NaN, NA, NaT) as None, timestamps as ISO 8601
        strings, numpy scalars as Python numbers.
    """
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    for row in rows:
        for key, value in row.items():
            if hasattr(value, "isoformat"):  # pandas Timestamp, datetime, date
                row[key] = value.isoformat()
            elif hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
                row[key] = value.item()
    return rows
