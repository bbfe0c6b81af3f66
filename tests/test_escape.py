"""Escapers: for any string, no line break, no workflow command at a line start, round trips where possible."""

import html
import math
import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from releaserisk.escape import (
    BIDI_CONTROLS,
    CSV_FORMULA_STARTS,
    LINE_BREAKS,
    command_data,
    command_property,
    csv_cell,
    csv_frame,
    csv_text,
    fenced_block,
    html_text,
    json_safe,
    markdown_cell,
    one_line,
    plain_text,
    stop_commands,
    terminal_text,
    workflow_command,
)

# text rich in the characters that matter: breaks, %, :, ,, pipes, backticks, markup
_pieces = st.sampled_from([*LINE_BREAKS, *"%:,|`<>&\"'\\", "::error::", "```", "%0A", "\r\n"])
hostile = st.lists(st.one_of(_pieces, st.text(max_size=3)), max_size=12).map("".join)


def no_break(text: str) -> bool:
    return not any(ch in text for ch in LINE_BREAKS)


def unescape_command(text: str) -> str:
    # the runner's decoding (ActionCommand.UnescapeValue): %0D, %0A, %3A, %2C, then %25
    for code, ch in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, ch)
    return text


@given(hostile)
def test_command_data_is_one_line_and_round_trips(text):
    escaped = command_data(text)
    assert "\r" not in escaped and "\n" not in escaped
    assert unescape_command(escaped) == text


@given(hostile)
def test_command_property_has_no_separator_and_round_trips(text):
    escaped = command_property(text)
    assert not set(escaped) & set("\r\n:,")
    assert unescape_command(escaped) == text


@given(hostile, hostile)
def test_a_workflow_command_is_one_line_with_the_message_after_the_only_separator(title, message):
    line = workflow_command("error", message, title=title)
    assert "\r" not in line and "\n" not in line
    head, _, body = line[2:].partition("::")
    assert head.startswith("error title=") and unescape_command(body) == message


@given(hostile)
def test_one_line_has_no_break_and_no_command_can_start_a_line(text):
    line = one_line(text)
    assert no_break(line) and len(f"x {line}".splitlines()) == 1
    assert not line.lstrip().startswith("::")


def test_one_line_examples():
    assert one_line("fix\r::error::owned") == "fix\\r::error::owned"
    assert one_line("a\\nb") == "a\\\\nb"  # a literal backslash-n is not confused with a break
    assert one_line(" ::error::x") == " \\::error::x"


@given(hostile)
def test_markdown_cell_is_one_cell_without_markup(text):
    cell = markdown_cell(text)
    assert no_break(cell)
    assert not re.search(r"(?<!\\)(?:\\\\)*\|", cell)  # every pipe escaped
    assert not re.search(r"(?<!\\)(?:\\\\)*`", cell)  # every backtick escaped
    assert "<" not in cell.replace("<br>", "") and ">" not in cell.replace("<br>", "")


@given(hostile)
def test_fenced_block_cannot_be_closed_by_its_content_and_round_trips(text):
    block = fenced_block(text)
    fence = block.split("\n", 1)[0]
    assert set(fence) == {"`"} and len(fence) >= 3
    runs = re.findall(r"`+", text)
    assert all(len(run) < len(fence) for run in runs)
    assert block == f"{fence}\n{text}\n{fence}\n"


@given(hostile)
def test_html_text_has_no_markup_and_round_trips(text):
    escaped = html_text(text)
    assert not set(escaped) & set("<>\"'")
    assert html.unescape(escaped) == text


@given(hostile)
def test_stop_commands_encloses_any_text_with_an_unguessable_token(text):
    out = stop_commands(text)
    first, *_, last = out.rstrip("\n").split("\n")
    token = first.removeprefix("::stop-commands::")
    assert len(token) == 32 and last == f"::{token}::" and token not in text


def test_json_safe_turns_every_non_finite_number_into_null():
    value = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": (np.float64("nan"), np.int64(3)), "e": "x"}
    assert json_safe(value) == {"a": None, "b": [1.0, None, {"c": None}], "d": [None, 3], "e": "x"}
    assert json_safe(np.array([1.0, np.nan])) == [1.0, None]


@given(hostile)
def test_plain_text_keeps_the_faces_lines_and_no_line_is_a_command(text):
    out = plain_text(text)
    assert out.count("\n") == text.count("\n")
    assert not any(line.lstrip().startswith("::") for line in out.splitlines())
    assert all(ch not in out for ch in LINE_BREAKS.replace("\n", ""))


def test_json_records_are_plain_json_whatever_the_column_types():
    import json
    import math

    import numpy as np
    import pandas as pd

    from releaserisk.escape import json_records

    frame = pd.DataFrame({"at": pd.to_datetime(["2026-01-05T02:00:00Z", None], utc=True),
                          "n": np.array([3, 4], dtype="int64"), "rate": [0.5, math.nan],
                          "id": ["d1", None]})  # fmt: skip
    rows = json_records(frame)
    assert rows == [{"at": "2026-01-05T02:00:00+00:00", "n": 3, "rate": 0.5, "id": "d1"},
                    {"at": None, "n": 4, "rate": None, "id": None}]  # fmt: skip
    json.dumps(rows, allow_nan=False)  # no NaN, no numpy scalar, no Timestamp


# text rich in what spreadsheets and terminals act on: formula starts, controls, bidi overrides
_sheet_pieces = st.sampled_from(
    [*"=+-@\t\r\n'\\", "\x1b[31m", "\x00", "\x7f", "\x9b", *BIDI_CONTROLS, '=HYPERLINK("http://e","x")', "1", "-2.5"]
)
sheet_hostile = st.lists(st.one_of(_sheet_pieces, st.text(max_size=3)), max_size=12).map("".join)
_controlled = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")


@given(sheet_hostile)
def test_csv_cell_never_starts_a_formula_and_only_prefixes_a_quote(text):
    cell = csv_cell(text)
    assert cell in (text, "'" + text)
    assert not cell[:1] or cell[0] not in CSV_FORMULA_STARTS or re.fullmatch(r"[-+][\d.eE+-]+", cell)


@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), st.none()))
def test_csv_cell_leaves_every_non_text_value_alone(value):
    assert csv_cell(value) is value


def test_csv_cell_examples():
    assert csv_cell('=HYPERLINK("http://evil","x")') == '\'=HYPERLINK("http://evil","x")'
    assert [csv_cell(t) for t in ("+SUM(1)", "@cmd", "-2+3+cmd|' /C calc'!A0", "\tx", "\r=1")] == [
        "'+SUM(1)", "'@cmd", "'-2+3+cmd|' /C calc'!A0", "'\tx", "'\r=1"]  # fmt: skip
    assert [csv_cell(t) for t in ("-1.5", "+3", "1e-3", "plain", "", "a=b")] == [
        "-1.5",
        "+3",
        "1e-3",
        "plain",
        "",
        "a=b",
    ]


@given(st.lists(sheet_hostile, min_size=1, max_size=5))
def test_csv_frame_written_and_read_back_has_no_formula_cell_and_keeps_numbers(texts):
    import csv
    import io

    import pandas as pd

    frame = pd.DataFrame({"title": texts, "n": [-(i + 1) for i in range(len(texts))], "rate": -0.5})
    frame[texts[0] or "x"] = "y"  # a column named by user text
    out = csv_text(frame)
    header, *rows = list(csv.reader(io.StringIO(out, newline="")))  # strict: a bare \r outside quotes fails
    for cell in [*header, *(row[0] for row in rows)]:
        assert not cell[:1] or cell[0] not in CSV_FORMULA_STARTS or re.fullmatch(r"[-+][\d.eE+-]+", cell)
    assert [row[0] if row[0] == t else row[0].removeprefix("'") for row, t in zip(rows, texts, strict=True)] == texts
    assert [int(row[1]) for row in rows] == list(frame["n"]) and {row[2] for row in rows} == {"-0.5"}
    assert list(frame["title"]) == texts  # the caller's frame is not changed
    assert csv_frame(frame).dtypes.tolist() == frame.dtypes.tolist()


def _unescape_controls(text: str) -> str:
    return re.sub(r"\\x([0-9a-f]{2})|\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1) or m.group(2), 16)), text)


@given(sheet_hostile.filter(lambda t: "\\" not in t))
def test_terminal_text_shows_every_control_and_bidi_character_escaped_and_round_trips(text):
    out = terminal_text(text)
    assert not _controlled.search(out)
    assert "\n" in out or "\n" not in text  # the face's layout characters are kept
    assert _unescape_controls(out) == text


def test_terminal_text_examples_and_the_text_faces_use_it():
    title = "invoice\u202efdp.exe"
    assert terminal_text(title) == "invoice\\u202efdp.exe"
    assert terminal_text("\x1b[2Jgone") == "\\x1b[2Jgone"
    assert terminal_text("a\tb 👩\u200d💻") == "a\tb 👩\u200d💻"  # tab and the emoji joiner are no threat
    assert plain_text(f"title {title}\nnext") == "title invoice\\u202efdp.exe\nnext"
    assert one_line("x\u2066y") == "x\\u2066y"


@given(sheet_hostile)
def test_plain_text_and_one_line_leave_no_control_or_bidi_character(text):
    assert not _controlled.search(plain_text(text).replace("\n", ""))
    assert not _controlled.search(one_line(text))


def test_csv_text_of_every_column_type_and_of_an_empty_table():
    import pandas as pd

    frame = pd.DataFrame({"at": pd.to_datetime(["2026-01-05T02:00:00Z"], utc=True), "ok": [True], "t": ["-x"]})
    assert csv_text(frame) == "at,ok,t\n2026-01-05 02:00:00+00:00,True,'-x\n"
    assert csv_text(frame.iloc[:0]) == "at,ok,t\n"
    assert csv_text(pd.DataFrame({"t": ["a\rb"]})) == 't\r\n"a\rb"\r\n'  # the CR is quoted, not a row break
