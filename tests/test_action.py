"""The composite GitHub Action is valid YAML-shaped and runs the documented command."""

from pathlib import Path

ACTION = Path(__file__).resolve().parents[1] / "action.yml"


def test_action_runs_score_in_github_format_and_fails_on_exit_1():
    text = ACTION.read_text()
    for name in ("model:", "threshold:", "range:", "db:"):
        assert name in text
    assert "using: composite" in text and "actions/cache@v4" in text
    assert "score --format github" in text and 'args+=(--model "$RR_MODEL")' in text  # default: next to the store
    assert "exit $code" in text  # exit 1 from the gate fails the step
    # inputs reach the shell through env, never interpolated into the script (injection-safe)
    script = text.split("run: |", 1)[1]
    assert "${{" not in script
