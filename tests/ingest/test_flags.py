"""Flag audit logs of LaunchDarkly, Unleash, Flagsmith and the generic CSV, from documented examples."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from releaserisk.config import Settings
from releaserisk.errors import InputError
from releaserisk.ingest.flags import FLAG_FORMATS, assign_flag_services, ingest_flags, parse_flag_log

DATA = Path(__file__).parent / "data" / "flags"


def rows(store):
    return store.query("SELECT * FROM flag_changes ORDER BY changed_at, change_id")


def test_launchdarkly_paginated_dump_with_ms_epochs(store):
    result = ingest_flags(store, DATA / "launchdarkly_auditlog.json", "launchdarkly")
    assert (result.loaded, result.skipped) == (3, 2)
    frame = rows(store)
    assert list(frame["action"]) == ["on", "rollout", "off"]
    assert list(frame["flag_key"].unique()) == ["checkout.new-flow"]
    assert set(frame["environment"]) == {"production"}
    # 1717236000000 ms is 2024-06-01 10:00 UTC
    assert frame["changed_at"].iloc[0] == pd.Timestamp("2024-06-01T10:00:00Z")
    assert (frame["from_state"].iloc[1], frame["to_state"].iloc[1]) == ("10%", "50%")
    assert (frame["from_state"].iloc[0], frame["to_state"].iloc[0]) == ("off", "on")
    assert frame["owner"].iloc[0] == "ariel@acme.com"
    assert frame["actor"].iloc[2] == "oncall@acme.com"
    assert set(frame["source"]) == {"launchdarkly"}


def test_unleash_events(store):
    result = ingest_flags(store, DATA / "unleash_events.json", "unleash")
    assert (result.loaded, result.skipped) == (6, 1)
    frame = rows(store)
    assert list(frame["action"]) == ["created", "rollout", "on", "rollout", "off", "archived"]
    assert list(frame["to_state"].fillna("-")) == ["-", "10%", "on", "50%", "off", "-"]
    assert frame["from_state"].iloc[3] == "10%"
    assert frame["owner"].iloc[0] == "user@company.com"  # Unleash records no maintainer: the creator
    assert pd.isna(frame["environment"].iloc[0])


def test_flagsmith_paginated_audit_log(store):
    result = ingest_flags(store, DATA / "flagsmith_auditlog.json", "flagsmith")
    assert (result.loaded, result.skipped) == (3, 1)
    frame = rows(store)
    assert list(frame["action"]) == ["created", "on", "targeting"]
    assert list(frame["environment"].fillna("-")) == ["-", "Production", "Production"]
    assert set(frame["flag_key"]) == {"dark_mode"}
    assert "ser.not-a-real-key" not in frame.to_string()  # the environment's key is never kept


def test_generic_csv_with_epoch_seconds_and_explicit_service(store):
    store.execute("INSERT INTO services (service, flag_prefix) VALUES ('billing', 'payments.')")
    result = ingest_flags(store, DATA / "flags.csv", "csv")
    assert result.loaded == 3
    frame = rows(store)
    assert frame["changed_at"].iloc[2] == pd.Timestamp("2024-06-01T10:00:00Z")
    # an explicit service is kept; the empty one is derived from the prefix
    assert list(frame["service"]) == ["billing", "payments", "payments"]


@pytest.mark.parametrize("fmt", [f for f in FLAG_FORMATS if f != "csv"])
def test_reloading_changes_nothing(store, fmt):
    path = {
        "launchdarkly": "launchdarkly_auditlog.json",
        "unleash": "unleash_events.json",
        "flagsmith": "flagsmith_auditlog.json",
    }[fmt]
    ingest_flags(store, DATA / path, fmt)
    before = rows(store)
    ingest_flags(store, DATA / path, fmt)
    pd.testing.assert_frame_equal(rows(store), before)


def test_service_from_key_pattern_and_longest_prefix(store):
    store.execute("INSERT INTO services (service, flag_prefix) VALUES ('web', 'checkout'), ('cart', 'checkout.')")
    by_key = Settings(flag_service_pattern=r"^(?P<service>[a-z]+)-")
    ingest_flags(store, DATA / "unleash_events.json", "unleash", settings=by_key)
    ingest_flags(store, DATA / "launchdarkly_auditlog.json", "launchdarkly")
    frame = store.query("SELECT DISTINCT flag_key, service FROM flag_changes ORDER BY 1")
    services = dict(zip(frame["flag_key"], frame["service"], strict=True))
    assert services == {"checkout.new-flow": "cart", "search-v2": "search"}
    assert assign_flag_services(store) == 0


def test_unmapped_flags_are_counted(store):
    result = ingest_flags(store, DATA / "unleash_events.json", "unleash")
    assert result.unmapped == 6
    assert "belong to no service" in result.summary()
    assert result.to_dict()["unmapped"] == 6


_LD_NO_DATE = {
    "items": [
        {
            "_id": "a",
            "kind": "flag",
            "date": 1717236000000,
            "titleVerb": "turned on the flag",
            "accesses": [{"action": "updateOn", "resource": "env/prod:flag/x"}],
        },
        {
            "_id": "b",
            "kind": "flag",
            "date": None,
            "titleVerb": "turned on the flag",
            "accesses": [{"action": "updateOn", "resource": "env/prod:flag/x"}],
        },
    ]
}
_UNLEASH_BAD_TIME = {
    "events": [
        {
            "id": 1,
            "type": "feature-environment-enabled",
            "featureName": "x",
            "environment": "production",
            "createdAt": "yesterday",
        }
    ]
}
_CSV_HEAD = "change_id,flag_key,environment,action,changed_at\n"
BAD_FILES = [
    ("launchdarkly", "not json at all", "not JSON"),
    ("launchdarkly", '{"totalCount": 0}', "expected a page with 'items'"),
    ("unleash", '{"events": {"id": 1}}', "'events' is not a list"),
    ("flagsmith", '{"results": [1, 2]}', "not an object"),
    ("unleash", json.dumps(_UNLEASH_BAD_TIME), "not a valid timestamp"),
    ("launchdarkly", json.dumps(_LD_NO_DATE), "row 2: required value is empty"),
    ("csv", _CSV_HEAD + "c1,x,production,flipped,2024-06-01T00:00:00Z\n", "'flipped'"),
    ("csv", _CSV_HEAD + "c1,x,production,on,2024-06-01T00:00:00\n", "no time zone"),
    ("csv", "flag_key,action,changed_at\nx,on,2024-06-01T00:00:00Z\n", "missing required column(s) change_id"),
    ("yaml", "{}", "unknown flag log format"),
]


@pytest.mark.parametrize(("fmt", "content", "message"), BAD_FILES)
def test_bad_files_are_refused_and_nothing_is_loaded(store, tmp_path, fmt, content, message):
    ingest_flags(store, DATA / "flags.csv", "csv")
    before = rows(store)
    bad = tmp_path / ("bad.csv" if fmt == "csv" else "bad.json")
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ingest_flags(store, bad, fmt)
    pd.testing.assert_frame_equal(rows(store), before)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        parse_flag_log(tmp_path / "nope.json", "unleash")


_TYPES = [
    "feature-environment-enabled",
    "feature-environment-disabled",
    "feature-strategy-update",
    "feature-created",
    "feature-archived",
    "tag-created",
]
_ROLLOUT = st.fixed_dictionaries({"rollout": st.integers(0, 100).map(str)})
_EVENT = st.fixed_dictionaries(
    {
        "id": st.integers(1, 10**6),
        "type": st.sampled_from(_TYPES),
        "featureName": st.text("abc-._", min_size=1, max_size=8),
        "environment": st.sampled_from(["production", "staging", None]),
        # events that have happened: a time after the ingest's clock is refused (inputs.FUTURE_TOLERANCE)
        "createdAt": st.datetimes(
            max_value=__import__("datetime").datetime(2025, 12, 31), timezones=st.just(__import__("datetime").UTC)
        ).map(lambda d: d.isoformat()),
        "data": st.one_of(st.none(), st.fixed_dictionaries({"parameters": _ROLLOUT})),
    }
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_EVENT, max_size=6, unique_by=lambda e: e["id"]))
def test_unleash_parser_never_crashes_and_keeps_vocabulary(tmp_path_factory, events):
    path = tmp_path_factory.mktemp("u") / "events.json"
    path.write_text(json.dumps({"events": events}), encoding="utf-8")
    frame, skipped = parse_flag_log(path, "unleash")
    assert len(frame) + skipped == len(events)
    assert set(frame["action"]) <= {"created", "on", "off", "rollout", "targeting", "archived"}
    states = frame["to_state"].dropna()
    assert states.str.fullmatch(r"on|off|\d+%").all()


def test_offered_formats_are_the_parsers():
    from releaserisk.ingest.flags import _VENDORS

    assert (*_VENDORS, "csv") == FLAG_FORMATS
