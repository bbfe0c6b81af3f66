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
text shown on a terminal    :func:`terminal_text` (control and bidi characters as escapes)
CSV cell for a spreadsheet  :func:`csv_cell`, a table :func:`csv_frame`, its text :func:`csv_text`
markdown table cell         :func:`markdown_cell`
markdown fenced block       :func:`fenced_block`
HTML text or attribute      :func:`html_text`
JSON                        :func:`json_safe` (NaN and infinities become null)
==========================  ===================================================

Sources: the Actions toolkit's ``packages/core/src/command.ts`` (``escapeData``,
``escapeProperty``); GitHub's "Workflow commands" documentation (``stop-commands``);
CommonMark 0.31 section 4.5 (a fence closes only with at least as many backticks as
it opened with) and GitHub Flavored Markdown's tables (``\\|`` inside a cell); OWASP's
"CSV Injection" page (cells beginning with ``=`` ``+`` ``-`` ``@``, tab or carriage return
get a leading ``'``); Unicode Standard Annex #9 (the bidirectional formatting characters)
and CVE-2021-42574 ("Trojan Source": they reorder what a reader sees).
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
    "csv_cell",
    "csv_frame",
    "csv_text",
    "fenced_block",
    "html_text",
    "json_records",
    "json_safe",
    "markdown_cell",
    "one_line",
    "plain_text",
    "stop_commands",
    "terminal_text",
    "workflow_command",
]

#: Every character Python's ``str.splitlines`` (and so a permissive reader) treats as a
#: line break; the runner splits at ``\r`` and ``\n``, renderers at some of the others.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = re.compile(f"[{re.escape(LINE_BREAKS)}]")
_BACKTICKS = re.compile(r"`+")
#: Bidirectional formatting characters (UAX #9, table 2: ALM, LRM, RLM, LRE, RLE, PDF, LRO, RLO,
#: LRI, RLI, FSI, PDI): invisible, they reorder the text a reader sees around them.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: What a terminal must not receive raw: C0 controls but tab and newline (ESC starts an ANSI
#: sequence that can rewrite the screen), DEL, C1 controls and the bidi formatting characters.
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
#: The first characters that make a spreadsheet read a cell as a formula (OWASP, CSV Injection).
CSV_FORMULA_STARTS = "=+-@\t\r"
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


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
        are doubled so the escape is reversible. Control and bidirectional formatting
        characters are escaped too (:func:`terminal_text`).
    """
    return _no_command(_CONTROL.sub(_visible, _BREAK.sub(_visible, str(text).replace("\\", "\\\\"))))


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
        line beginning with ``::``) and :func:`terminal_text` (control and bidi characters
        escaped); the ``\\n`` kept. Unlike :func:`one_line`,
        backslashes are left alone (text output is read, not decoded).
    """
    return "\n".join(_no_command(terminal_text(_BREAK.sub(_visible, line))) for line in text.split("\n"))


def terminal_text(text: Any) -> str:
    """Text for a terminal with every control and bidirectional formatting character shown as its escape.

    A title holding U+202E (right-to-left override) prints reversed ("Trojan Source",
    CVE-2021-42574), and ESC starts an ANSI sequence that can move the cursor, recolour or
    erase what the terminal showed before. Shown as ``\\u202e`` or ``\\x1b`` they are visible
    and harmless.

    Parameters
    ----------
    text : Any
        Converted with ``str``.

    Returns
    -------
    str
        ``text`` with C0 controls (but tab and newline, which the face's layout uses), DEL,
        C1 controls and :data:`BIDI_CONTROLS` (Unicode Standard Annex #9, table 2)
        replaced by their Python escapes; every other character, emoji joiners included,
        unchanged. Lines are not touched: :func:`plain_text` and :func:`one_line` handle
        line breaks.
    """
    return _CONTROL.sub(_visible, str(text))


def csv_cell(value: Any) -> Any:
    """A cell for a CSV file that a spreadsheet opens: text cannot start a formula.

    Excel, LibreOffice and Google Sheets evaluate a cell that begins with ``=``, ``+``,
    ``-`` or ``@`` (and, after a tab or carriage return, the formula that follows):
    ``=HYPERLINK("http://evil", "x")`` in an incident title becomes a link, ``=cmd|…`` a
    DDE command. OWASP's "CSV Injection" guidance: prefix such cells with a single quote,
    which the spreadsheet shows as text and does not display.

    Parameters
    ----------
    value : Any
        A cell. Only ``str`` values are text cells; numbers, booleans, timestamps and
        missing values are returned unchanged (a negative number is no formula).

    Returns
    -------
    Any
        A ``str`` that starts with one of :data:`CSV_FORMULA_STARTS` and is not a plain
        number (``-1.5``, ``+3``) gets a leading ``'``; anything else is ``value`` itself.
        Quoting of commas, quotes and line breaks is the CSV writer's job.

    Notes
    -----
    Source: OWASP, "CSV Injection" (owasp.org/www-community/attacks/CSV_Injection).
    """
    if isinstance(value, str) and value and value[0] in CSV_FORMULA_STARTS and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_frame(frame: Any) -> Any:
    """A DataFrame with every text cell and column name through :func:`csv_cell`, ready for ``to_csv``.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        A copy; numeric and datetime columns are untouched, and in the others only ``str``
        values change.
    """
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype)):
            out[column] = out[column].map(csv_cell, na_action="ignore")
    return out.rename(columns=lambda name: csv_cell(name) if isinstance(name, str) else name)


def csv_text(frame: Any) -> str:
    """A DataFrame as CSV text that a spreadsheet opens without running a formula or splitting a row.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    str
        :func:`csv_frame`'s cells, no index, ``\\n`` line ends. Python's CSV writer quotes a
        field holding a carriage return only when ``\\r`` is part of its line terminator, and
        a spreadsheet starts a new row at an unquoted ``\\r`` (a row whose first cell nothing
        neutralised): a table with such a cell is written with RFC 4180's ``\\r\\n`` line ends,
        which quotes it.
    """
    out = csv_frame(frame)
    cells = (value for column in out.columns if out[column].dtype.kind not in "biufcmM" for value in out[column])
    has_cr = any(isinstance(value, str) and "\r" in value for value in (*out.columns, *cells))
    return out.to_csv(index=False, lineterminator="\r\n" if has_cr else "\n")


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
