"""What the HTTP sources share: telling a server's garbage from our own bugs, service maps, results."""

import json

import pytest

from releaserisk.ingest.sources import SourceIngestResult, raised_reading


def _read_field(answer):
    return answer["missing"]


def _call_through(function, *args):
    return function(*args)


def _caught(function, *args):
    try:
        function(*args)
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


def test_a_field_missing_where_answers_are_read_is_the_servers_garbage():
    exc = _caught(_read_field, {})
    assert raised_reading(exc, pytest, __file__)  # raised right in the reader module
    assert not raised_reading(exc, pytest, "/elsewhere/reader.py")


def test_an_error_passing_through_the_client_library_is_the_servers_garbage():
    exc = _caught(_call_through, json.loads, "<html>")
    assert raised_reading(exc, json, "/elsewhere/reader.py")


def test_our_own_bug_deeper_in_other_code_is_not_disguised():
    exc = _caught(_call_through, sorted, [1, "a"])  # a TypeError raised by our misuse, not by reading
    assert not raised_reading(exc, json, "/elsewhere/reader.py")


def test_results_say_what_was_read():
    result = SourceIngestResult("GitLab", "acme/shop", {"merge_requests": 3}, calls=5)
    assert result.summary() == "ingested acme/shop from GitLab: merge_requests 3 (5 API calls)"
    assert result.to_dict()["counts"] == {"merge_requests": 3} and result.frame["rows"].tolist() == [3]
    assert "API calls" not in SourceIngestResult("Jira", "x", {}).summary()
