"""The ``fourkeys`` profile held against dora-team/fourkeys' SQL, rule by rule, on hand-computed fixtures.

Each test derives its numbers by reading the Four Keys query it cites (``queries/*.sql``,
``METRICS.md``, ``dashboard/fourkeys_dashboard.json``); the derivation is in its docstring.
"""

from releaserisk.dora import dora_metrics
from tests.test_dora import dep, load

WINDOW = ("2024-01-01", "2024-01-08")


def test_whole_minutes_and_hours_are_truncated_toward_zero_as_timestamp_diff(store):
    """TIMESTAMP_DIFF(a, b, MINUTE | HOUR) is the whole number of intervals between a and b (GoogleSQL), so
    a negative span rounds toward zero, not down.

    Time to restore (dashboard "Median Time to Restore Services": PERCENTILE_CONT(TIMESTAMP_DIFF(time_resolved,
    time_created, HOUR), 0.5), no filter on the sign): incident ``ok`` 00:00 -> 03:30 is 3 h; incident ``skew``
    was resolved 90 min before it opened: -1 h (a floor gave -2). Interpolated median of [-1, 3] = 1.0 (a floor:
    0.5).

    Lead time (dashboard "Lead Time for Changes": TIMESTAMP_DIFF(d.time_created, c.time_created, MINUTE), kept
    when > 0): ``early`` was committed 30 s after d1 finished: 0 min (a floor gave -1 min) and is dropped;
    ``late`` 90 min 30 s before d1: 90 min = 1.5 h, the only value.
    """
    load(
        store,
        commits=[("early", "2024-01-02T00:00:30Z"), ("late", "2024-01-01T22:29:30Z")],
        deployments=[dep(1, "2024-01-02T00:00Z")],
        changes=[("d1", "early"), ("d1", "late")],
        incidents=[{"incident_id": "ok", "service": "api", "opened_at": "2024-01-03T00:00Z",
                    "resolved_at": "2024-01-03T03:30Z"},
                   {"incident_id": "skew", "service": "api", "opened_at": "2024-01-04T03:00Z",
                    "resolved_at": "2024-01-04T01:30Z"}],
    )  # fmt: skip
    result = dora_metrics(store, *WINDOW, profile="fourkeys")
    row = result.frame.iloc[0]
    assert (row.restore_median_hours, row.restore_median_hours_n) == (1.0, 2)
    assert (row.lead_time_median_hours, row.lead_time_median_hours_n) == (1.5, 1)
    leads = result.changes.set_index("sha")["lead_time_hours"]
    assert leads["early"] == 0 and leads["late"] == 1.5
