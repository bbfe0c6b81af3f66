"""The shared definitions: production deployment, pre-production stages, the span guard."""

import duckdb

from releaserisk.config import Settings
from releaserisk.definitions import (
    guarded,
    is_clock_skew,
    last_pre_production_stage,
    pre_production_stages,
    production_deployment,
    production_environments,
)


def test_production_deployment_is_a_success_in_a_production_environment_in_any_case():
    rows = duckdb.sql(
        f"""SELECT id FROM (VALUES (1, 'success', 'Production'), (2, 'failure', 'production'),
                                   (3, 'success', 'staging'), (4, 'success', 'PROD')) d(id, status, environment)
            WHERE {production_deployment("d", "['production', 'prod']")} ORDER BY id"""
    ).fetchall()
    assert rows == [(1,), (4,)]
    assert production_environments(Settings(production_environments=("Live",))) == ["live"]


def test_pre_production_stages_are_the_order_without_production():
    settings = Settings(environment_order=("dev", "qa", "staging", "production"))
    assert pre_production_stages(settings) == ["dev", "qa", "staging"]
    assert last_pre_production_stage(settings) == "staging"
    only = Settings(environment_order=("production",))
    assert pre_production_stages(only) == [] and last_pre_production_stage(only) is None


def test_the_guard_excludes_drops_or_keeps_a_negative_span():
    sql = "SELECT {}, {}, {}, {} FROM (VALUES (-2.0), (3.0)) t(x) ORDER BY x"
    rows = duckdb.sql(sql.format(guarded("x"), guarded("x", "drop"), guarded("x", "keep"), is_clock_skew("x")))
    assert rows.fetchall() == [(None, None, -2.0, True), (3.0, 3.0, 3.0, False)]
