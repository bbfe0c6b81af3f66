import json
import subprocess
import sys

import pytest

from releaserisk.cli import main
from releaserisk.store import _migrations


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "releaserisk.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_version_and_help():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("releaserisk ")
    assert run_cli("ingest", "git", "--help").returncode == 0


def test_init_creates_store_and_reports_json(tmp_path, capsys):
    db = tmp_path / "s.duckdb"
    assert main(["--db", str(db), "init", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["schema_version"] == _migrations()[-1][0]
    assert "commits" in payload["tables"] and "issues" in payload["tables"]
    assert db.exists()


def test_missing_database_directory_is_one_line_exit_2(tmp_path):
    out = run_cli("--db", str(tmp_path / "nope" / "s.duckdb"), "init")
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: ") and "does not exist" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_bad_flag_is_usage_error_exit_2():
    out = run_cli("init", "--no-such-flag")
    assert out.returncode == 2 and "unrecognized arguments" in out.stderr
    # one line, as every other bad input: no usage block (that is what --help is for)
    for argv in (["init", "--no-such-flag"], ["dora", "--freq", "Y"], ["ingest", "git-tags", "."], ["nosuch"]):
        err = run_cli(*argv).stderr
        assert err.startswith("error: releaserisk") and len(err.strip().splitlines()) == 1, (argv, err)
        assert "usage:" not in err and "--help" in err


def test_corrupt_store_exit_2(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_text("hello")
    out = run_cli("--db", str(bad), "info")
    assert out.returncode == 2 and "not a DuckDB database" in out.stderr


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        main(["--debug", "--db", str(tmp_path / "nope" / "s.duckdb"), "init"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dora", "--since", "garbage"], "is not a date"),
        (["simulate", "--out", "/proc/releaserisk-cannot-write-here"], "error: "),
        (["init"], "is a directory"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path, args, message):
    db = tmp_path if args == ["init"] else tmp_path / "s.duckdb"
    if args[0] == "dora":
        assert run_cli("--db", str(db), "init").returncode == 0
    out = run_cli("--db", str(db), *args)
    assert out.returncode == 2 and message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_multi_line_library_message_is_printed_on_one_line(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("date,bug\n1,0\n2,1,3,4\n")  # pandas: "Error tokenizing data. C error: …\n"
    out = run_cli("evaluate", "--dataset", str(ragged))
    assert out.returncode == 2 and "cannot read" in out.stderr and "Expected 2 fields in line 3" in out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.endswith("\n")  # no blank or continuation line


def test_a_bug_is_exit_70_in_one_line_never_the_gate_failure_code(tmp_path, capsys, monkeypatch):
    import releaserisk.cli as cli
    import releaserisk.cli.store

    def broken(args):
        raise KeyError("no such column\nsecond line")

    monkeypatch.setattr(releaserisk.cli.store, "cmd_info", broken)  # the parser binds handlers when main() builds it
    assert main(["--db", str(tmp_path / "s.duckdb"), "info"]) == cli.EXIT_INTERNAL == 70
    err = capsys.readouterr().err
    assert err.startswith("error: internal error (KeyError:") and err.count("\n") == 1 and "--debug" in err
    with pytest.raises(KeyError):
        main(["--db", str(tmp_path / "s.duckdb"), "--debug", "info"])


def test_json_output_writes_missing_numbers_as_null(capsys):
    import argparse
    import math

    from releaserisk.cli.output import emit as _emit

    payload = {"auc": math.nan, "rows": [{"p90": float("inf"), "n": 3}], "pair": (1.5, math.nan)}
    _emit(argparse.Namespace(format="json"), payload, "")
    out = capsys.readouterr().out
    assert "NaN" not in out and "Infinity" not in out  # strict parsers (jq, browsers) refuse both
    assert json.loads(out) == {"auc": None, "rows": [{"p90": None, "n": 3}], "pair": [1.5, None]}


def test_github_annotations_cannot_start_a_workflow_command_of_their_own(capsys, monkeypatch):
    from releaserisk.cli.output import github_output as _github_output

    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    _github_output("", [("warning", "metric lat\n::add-mask::secret 100%\r")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "::warning::metric lat%0A::add-mask::secret 100%25%0D"
    assert not any(line.startswith("::add-mask::") for line in lines)


def test_counts_read_in_the_right_number():
    from releaserisk.cli.output import counted as _counted

    assert [_counted(1, "row"), _counted(2070, "row"), _counted(1, "fix", "fixes"), _counted(0, "fix", "fixes")] == [
        "1 row", "2,070 rows", "1 fix", "0 fixes"]  # fmt: skip


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subparsers(sub)


def test_the_cli_holds_no_sql():
    import re
    from pathlib import Path

    import releaserisk.cli

    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE FROM|CREATE TABLE)\b")
    for path in Path(releaserisk.cli.__file__).parent.glob("*.py"):
        found = [line.strip() for line in path.read_text().splitlines() if sql.search(line)]
        assert not found, f"{path.name} holds SQL: {found}"


def test_every_choice_the_cli_offers_is_the_library_constant():
    from releaserisk import choices, dora, gate, model, report, simulation
    from releaserisk.canary import data
    from releaserisk.cli import build_parser

    expected = {
        "estimator": choices.ESTIMATORS,
        "level": choices.MODEL_LEVELS,
        "profile": choices.DORA_PROFILES,
        "benchmark": choices.DORA_BENCHMARK_YEARS,
        "detail": choices.DORA_DETAILS,
        "by": choices.DORA_GROUPS,
        "report_by": choices.REPORT_GROUPS,  # report weekly --by: blocks per service
        "log_format": choices.FLAG_FORMATS,  # ingest flags --format: the flag log's format
        "freq": tuple(choices.DORA_PERIODS),
        "scenario": choices.SCENARIO_NAMES,
        "mode": choices.CANARY_MODES,
        "arm": choices.CANARY_ARMS,
        "fail_on": choices.RISK_BANDS,
        "as_": choices.JIRA_KINDS,
    }
    local = {"format", "workers"}  # the CLI's own: output formats, git processes
    offered = {}
    for parser in _subparsers(build_parser()):
        for action in parser._actions:
            if action.choices is not None and not isinstance(action.choices, dict) and action.dest not in local:
                offered.setdefault(action.dest, set()).add(tuple(action.choices))
    assert set(offered) == set(expected)
    for dest, values in offered.items():
        assert values == {tuple(expected[dest])}, dest
    # ...and the library validates against the same constants
    assert model._ESTIMATORS is choices.ESTIMATORS
    assert report.BY is choices.REPORT_GROUPS
    assert dora.PROFILES is choices.DORA_PROFILES
    assert set(dora.BENCHMARKS) == set(choices.DORA_BENCHMARK_YEARS)
    assert set(simulation.SCENARIOS) == set(choices.SCENARIO_NAMES)
    from releaserisk.ingest import jira

    assert jira.JIRA_KINDS is choices.JIRA_KINDS
    assert data.ARMS is choices.CANARY_ARMS
    assert [gate.band(p, 0.5) for p in (0.01, 0.2, 0.9)] == list(choices.RISK_BANDS)
