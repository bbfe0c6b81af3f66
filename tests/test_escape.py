"""Escapers: for any string, no line break, no workflow command at a line start, round trips where possible."""

import html
import math
import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from releaserisk.escape import (
    LINE_BREAKS,
    command_data,
    command_property,
    fenced_block,
    html_text,
    json_safe,
    markdown_cell,
    one_line,
    plain_text,
    stop_commands,
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
