"""Rollback safety of a batch (migrations read from a real git repository) and rollback readiness."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from releaserisk.config import Settings
from releaserisk.gate import score_commits
from releaserisk.ingest.git import ingest_git
from releaserisk.migrations_safety import FORWARD_FIX_ADVICE
from releaserisk.rollback import RollbackSafety, assess_rollback, rollback_readiness


class _Model:
    """A fixed-probability scorer with the Scorecard interface."""

    features = ("la", "ld")

    def predict_proba(self, frame):
        return np.column_stack([np.full(len(frame), 0.9), np.full(len(frame), 0.1)])

    def explain(self, frame, top=3):
        rows = [(i, f, 1.0, 0.1) for i in range(len(frame)) for f in self.features]
        return pd.DataFrame(rows, columns=["row", "feature", "value", "contribution"])


@pytest.fixture
def repo_with_migrations(git_repo, store):
    git_repo.write("app.py", "print('hi')\n")
    base = git_repo.commit("initial")
    git_repo.write("migrations/0041.sql", "CREATE TABLE users (id int, email text);\n")
    git_repo.commit("add users")
    git_repo.write("migrations/0042.sql", "ALTER TABLE users DROP COLUMN email;\n")
    git_repo.write("app.py", "print('bye')\n")
    git_repo.commit("drop email")
    ingest_git(store, git_repo.path, name="shop")
    return git_repo, base


def _shas(store):
    return store.query("SELECT sha FROM commits WHERE repo = 'shop' ORDER BY seq")["sha"].tolist()


def test_unsafe_batch_names_the_operation_and_file(repo_with_migrations, store):
    safety = assess_rollback(store, "shop", repo_with_migrations[0].path, _shas(store))
    assert not safety.rollback_safe
    assert safety.reasons == ["drops column users.email in migrations/0042.sql"]
    assert safety.advice == FORWARD_FIX_ADVICE
    assert [f.reversible for f in safety.findings] == [True, False]
    assert not safety.fails_gate  # default effect: warn


def test_safe_batch(repo_with_migrations, store):
    only_create = _shas(store)[1:2]
    safety = assess_rollback(store, "shop", repo_with_migrations[0].path, only_create)
    assert safety.rollback_safe and safety.advice is None and safety.reasons == []
    assert "all reversible" in safety.summary()


@pytest.mark.parametrize("effect", ["warn", "fail"])
def test_gate_carries_rollback_safe_in_every_format(repo_with_migrations, store, effect):
    settings = Settings(unsafe_rollback_gate=effect)
    safety = assess_rollback(store, "shop", repo_with_migrations[0].path, _shas(store), settings=settings)
    features = pd.DataFrame({"sha": ["a" * 40], "subject": ["drop email"], "la": [1], "ld": [1]})
    result = score_commits(_Model(), features, threshold=0.5, model_id="m", rollback=safety)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["rollback_safe"] is False
    assert payload["rollback"]["reasons"] == ["drops column users.email in migrations/0042.sql"]
    assert payload["rollout"]["rollback"] == FORWARD_FIX_ADVICE
    assert payload["gate"] == ("fail" if effect == "fail" else "pass")
    assert result.exit_code == (1 if effect == "fail" else 0)
    assert "rollback: UNSAFE — forward-fix only; use expand/contract" in result.summary()
    assert "drops column users.email in migrations/0042.sql" in result.summary()
    assert "**Rollback unsafe**" in result.markdown()


def test_gate_without_assessment_says_unknown():
    features = pd.DataFrame({"sha": ["a" * 40], "subject": ["x"], "la": [1], "ld": [1]})
    payload = score_commits(_Model(), features, threshold=0.5, model_id="m").to_dict()
    assert payload["rollback_safe"] is None and "rollback" not in payload["rollout"]


def _deploy(store, rows):
    frame = pd.DataFrame(rows, columns=["deployment_id", "service", "repo", "environment", "sha", "finished_at",
                                        "status", "kind", "reverts_deployment_id"])  # fmt: skip
    frame["finished_at"] = pd.to_datetime(frame["finished_at"], utc=True)
    store.upsert("deployments", frame)


def test_readiness_by_hand(repo_with_migrations, store):
    shas = _shas(store)
    _deploy(store, [
        ("d1", "shop", "shop", "production", shas[0], "2024-01-01T10:00Z", "success", "regular", None),
        ("d2", "shop", "shop", "production", shas[2], "2024-01-02T10:00Z", "success", "regular", None),
        ("r1", "shop", "shop", "production", shas[0], "2024-01-02T11:00Z", "failure", "rollback", "d2"),
        ("r2", "shop", "shop", "production", shas[0], "2024-01-02T12:00Z", "success", "rollback", None),
        ("x1", "idle", "shop", "production", shas[0], "2024-01-01T10:00Z", "success", "regular", None),
        ("s1", "shop", "shop", "staging", shas[0], "2024-01-05T10:00Z", "success", "rollback", None),
    ])  # fmt: skip
    # d2 shipped the two migration commits
    store.upsert("deployment_changes", pd.DataFrame({"deployment_id": "d2", "repo": "shop", "sha": shas[1:]}))
    frame = rollback_readiness(store, as_of=datetime(2024, 1, 12, 12, tzinfo=UTC)).set_index("service")
    shop = frame.loc["shop"]
    assert (shop["rollbacks"], shop["succeeded"], shop["success_rate"]) == (2, 1, 0.5)
    assert shop["ci_low"] < 0.5 < shop["ci_high"]
    assert shop["days_since_last_success"] == pytest.approx(10.0)
    assert shop["last_rollback_status"] == "success"
    # r2 names nothing: it undid the latest successful production deployment before it, d2 (migrations)
    assert shop["last_crossed_migration"] is not None and bool(shop["last_crossed_migration"])
    idle = frame.loc["idle"]
    assert idle["rollbacks"] == 0 and pd.isna(idle["success_rate"]) and idle["last_crossed_migration"] is None
    safety = RollbackSafety([], frame.reset_index())
    text = safety.summary()
    assert "idle: no production rollback on record" in text
    assert "shop: rollbacks 1/2 succeeded (50%" in text and "crossed a schema migration" in text
    payload = json.loads(json.dumps(safety.to_dict()))  # JSON-safe: no NaN, timestamps as text
    idle_row, shop_row = payload["readiness"]
    assert idle_row["service"] == "idle" and idle_row["success_rate"] is None
    assert shop_row["last_success_at"].startswith("2024-01-02T12:00")


def test_an_untried_rollback_path_is_not_called_safe(repo_with_migrations, store):
    """'rollback: safe (0 schema migrations in the batch, all reversible)' stood above 'requests: no production
    rollback on record (an untried rollback path)': one line now says what is known and what is not."""
    shas = _shas(store)
    _deploy(store, [("d1", "shop", "shop", "production", shas[0], "2024-01-01T10:00Z", "success", "regular", None)])
    as_of = datetime(2024, 1, 12, tzinfo=UTC)
    none = assess_rollback(store, "shop", repo_with_migrations[0].path, shas[:1], as_of=as_of).summary()
    assert none == (
        "rollback: no schema migration in the batch, but shop has no production rollback on record: "
        "its rollback path is untried, so whether a rollback works is unknown"
    )
    reversible = assess_rollback(store, "shop", repo_with_migrations[0].path, shas[1:2], as_of=as_of).summary()
    assert reversible.startswith("rollback: 1 schema migration in the batch, all reversible, but shop has no")
    assert "safe" not in none + reversible and len(reversible.splitlines()) == 1
    # several services: the line counts the untried ones, each service's line follows
    _deploy(store, [("x1", "idle", "shop", "production", shas[0], "2024-01-01T10:00Z", "success", "regular", None)])
    several = assess_rollback(store, "shop", repo_with_migrations[0].path, shas[:1], as_of=as_of).summary()
    assert several.splitlines()[0] == (
        "rollback: no schema migration in the batch; whether a rollback works is unknown for 2 of 2 services "
        "(no production rollback on record)"
    )
    assert "  idle: no production rollback on record (an untried rollback path)" in several.splitlines()
    # a path that was exercised: safe, as before
    _deploy(store, [("r1", "shop", "shop", "production", shas[0], "2024-01-02T10:00Z", "success", "rollback", "d1")])
    tried = RollbackSafety([], rollback_readiness(store, services=["shop"], as_of=as_of)).summary()
    assert tried.splitlines()[0] == "rollback: safe (no schema migration in the batch)"


def test_json_rollback_status_says_what_the_text_says(repo_with_migrations, store):
    """``rollback_safe: true`` spoke of the migrations alone; a CI reader took it for a tested rollback path.
    ``status`` follows the text's rollback line: unknown, untried, failing, safe, and unsafe (a migration)."""
    shas = _shas(store)
    as_of = datetime(2024, 1, 12, tzinfo=UTC)

    def status(batch):
        safety = assess_rollback(store, "shop", repo_with_migrations[0].path, batch, as_of=as_of)
        return safety.to_dict()["rollback_safe"], safety.status, safety.summary().splitlines()[0]

    assert status(shas[:1])[:2] == (True, "unknown")  # no production deployment on record
    _deploy(store, [("d1", "shop", "shop", "production", shas[0], "2024-01-01T10:00Z", "success", "regular", None)])
    assert status(shas[:1])[:2] == (True, "untried")
    _deploy(store, [("r1", "shop", "shop", "production", shas[0], "2024-01-02T10:00Z", "failure", "rollback", "d1")])
    safe, state, line = status(shas[:1])
    assert (safe, state) == (True, "failing")
    assert line == "rollback: no schema migration in the batch, but no rollback of shop has ever succeeded: do not " \
        "count on one"  # fmt: skip
    _deploy(store, [("r2", "shop", "shop", "production", shas[0], "2024-01-03T10:00Z", "success", "rollback", "d1")])
    assert status(shas[:1]) == (True, "safe", "rollback: safe (no schema migration in the batch)")
    assert status(shas)[:2] == (False, "unsafe")  # drops a column, whatever the record
    features = pd.DataFrame({"sha": ["a" * 40], "subject": ["x"], "la": [1], "ld": [1]})
    safety = assess_rollback(store, "shop", repo_with_migrations[0].path, shas[:1], as_of=as_of)
    payload = score_commits(_Model(), features, threshold=0.5, model_id="m", rollback=safety).to_dict()
    assert (payload["rollback_safe"], payload["rollback_status"], payload["rollback"]["status"]) == (
        True,
        "safe",
        "safe",
    )
    bare = score_commits(_Model(), features, threshold=0.5, model_id="m").to_dict()
    assert (bare["rollback_safe"], bare["rollback_status"]) == (None, "not assessed")
