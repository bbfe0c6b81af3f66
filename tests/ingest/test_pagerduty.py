"""PagerDuty ingestion against replayed REST v2 responses shaped as the API reference's "List incidents" example.

The official client speaks httpx, so the recorded responses are replayed by an httpx
transport (the HTTP layer, as `responses` does for requests), in order.
"""

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from releaserisk.errors import InputError, PagerDutyError
from releaserisk.ingest.pagerduty import ingest_pagerduty
from releaserisk.ingest.sources import read_service_map

TOKEN = "u+pdtesttokennever-printed"


def incident(number, *, status="resolved", service=("PIJ90N7", "My Mail Service"), priority="P2", **extra):
    # developer.pagerduty.com/api-reference/9d0b4b12e36f9-list-incidents (trimmed)
    return {
        "id": f"PT4KH{number:02d}", "type": "incident", "summary": f"[#{number}] The server is on fire.",
        "self": f"https://api.pagerduty.com/incidents/PT4KH{number:02d}", "incident_number": number,
        "title": "The server is on fire.", "created_at": f"2024-05-{number:02d}T21:30:42Z",
        "updated_at": f"2024-05-{number:02d}T21:40:23Z", "status": status,
        "last_status_change_at": f"2024-05-{number:02d}T21:38:23Z",
        "service": {"id": service[0], "type": "service_reference", "summary": service[1],
                    "self": f"https://api.pagerduty.com/services/{service[0]}"},
        "priority": {"id": "P53ZZH5", "type": "priority_reference", "summary": priority} if priority else None,
        "urgency": "high", **extra,
    }  # fmt: skip


def page(items, offset=0, more=False):
    return {"incidents": items, "limit": 100, "offset": offset, "total": None, "more": more}


class Replay:
    """An httpx transport answering recorded responses in order and keeping the requests."""

    def __init__(self, *answers):
        import httpx2

        self.answers = list(answers)
        self.requests = []
        self.transport = httpx2.MockTransport(self.handle)

    def handle(self, request):
        import httpx2

        self.requests.append(request)
        status, body, headers = self.answers.pop(0)
        raw = body if isinstance(body, str) else json.dumps(body)
        headers = {"content-type": "application/json", **headers}
        return httpx2.Response(status, headers=headers, stream=httpx2.ByteStream(raw.encode()))

    def query(self, index):
        return parse_qs(urlsplit(str(self.requests[index].url)).query)


def ok(body, headers=None):
    return (200, body, headers or {})


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    import pagerduty.api_client

    slept = []
    monkeypatch.setattr(pagerduty.api_client.time, "sleep", slept.append)
    return slept


def ingest(store, replay, **kwargs):
    return ingest_pagerduty(store, token=TOKEN, transport=replay.transport, retries=2, **kwargs)


def test_two_pages_with_a_service_map(store):
    replay = Replay(
        ok(
            page([incident(1, resolved_at="2024-05-01T22:00:00Z"), incident(2, service=("PXX", "Payments"))], more=True)
        ),
        ok(page([incident(3, status="triggered", priority=None, title="root cause: abcdef1234 broke it")], offset=2)),
    )
    result = ingest(store, replay, service_map={"PIJ90N7": "mail", "Payments": "payments"})
    assert result.counts == {"incidents": 3} and result.calls == 2
    assert replay.query(0)["date_range"] == ["all"] and replay.query(1)["offset"] == ["2"]
    rows = store.query("SELECT * FROM incidents ORDER BY opened_at")
    assert rows["incident_id"].tolist() == ["pagerduty:PT4KH01", "pagerduty:PT4KH02", "pagerduty:PT4KH03"]
    assert rows["service"].tolist() == ["mail", "payments", "mail"]
    assert rows["severity"].tolist() == ["P2", "P2", "high"]  # priority, else urgency
    resolved = [str(t) for t in rows["resolved_at"]]
    # resolved_at where given, else the resolving status change; a triggered incident is open
    assert resolved[:2] == ["2024-05-01 22:00:00+00:00", "2024-05-02 21:38:23+00:00"] and resolved[2] == "NaT"
    assert rows["cause_sha"][2] == "abcdef1234"
    assert TOKEN not in str(store.query("SELECT * FROM ingest_runs").to_dict())
    assert replay.requests[0].headers["Authorization"] == f"Token token={TOKEN}"


def test_a_rerun_reads_from_the_watermark_less_the_recheck_window(store):
    from datetime import UTC, datetime, timedelta

    opened = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    ingest(store, Replay(ok(page([incident(20, created_at=opened.isoformat())]))))
    resolved = (opened + timedelta(hours=2)).isoformat()
    replay = Replay(ok(page([incident(20, created_at=opened.isoformat(), resolved_at=resolved)])))
    ingest(store, replay)
    since = datetime.fromisoformat(replay.query(0)["since"][0])
    assert since == opened - timedelta(days=14) and "date_range" not in replay.query(0)
    assert store.query("SELECT resolved_at FROM incidents")["resolved_at"][0] == opened + timedelta(hours=2)


def test_a_watermark_older_than_the_six_month_range_reads_everything(store):
    ingest(store, Replay(ok(page([incident(20)]))))  # May 2024
    replay = Replay(ok(page([])))
    ingest(store, replay)
    assert replay.query(0)["date_range"] == ["all"]


def test_rate_limit_is_waited_out(store, no_sleep):
    replay = Replay((429, {"error": {"message": "Rate Limit Exceeded", "code": 2020}}, {}), ok(page([incident(1)])))
    assert ingest(store, replay).counts == {"incidents": 1} and len(no_sleep) == 1


def test_rate_limit_without_waiting_stops_and_a_rerun_resumes(store):
    limit = (429, {"error": {"message": "Rate Limit Exceeded", "code": 2020}}, {})
    with pytest.raises(PagerDutyError, match="rate limit reached; re-run later to resume"):
        ingest(store, Replay(limit, limit), wait=False)
    assert store.counts()["incidents"] == 0 and store.counts()["ingest_runs"] == 0
    replay = Replay(ok(page([incident(1)])))
    assert ingest(store, replay, wait=False).counts == {"incidents": 1}
    assert replay.query(0)["date_range"] == ["all"]  # nothing was read before: it starts over


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((401, {"error": {"message": "Unauthorized", "code": 2006}}, {}), "rejected the API key"),
        ((403, {"error": {"message": "Forbidden", "code": 2010}}, {}), "permission denied"),
        ((404, {"error": {"message": "Not Found", "code": 2100}}, {}), "404"),
        ((500, {"error": {"message": "Internal Server Error"}}, {}), r"server error \(500\)"),
        ((200, "<html><body>502 Bad Gateway</body></html>", {"content-type": "text/html"}), "not the JSON"),
        ((200, '{"incidents": [{"id": "PT4KH01", "title": "cut', {}), "not the JSON"),
        ((200, {"incidents": [incident(1)], "limit": 100, "offset": 0}, {}), "not the JSON"),  # no "more": cut short
    ],
)
def test_errors_are_one_line_and_leave_the_store_untouched(store, answer, message):
    replay = Replay(answer, answer, answer)
    with pytest.raises(PagerDutyError, match=message) as info:
        ingest(store, replay)
    assert TOKEN not in str(info.value) and TOKEN[:6] not in str(info.value) and "\n" not in str(info.value)
    assert store.counts()["incidents"] == 0 and store.counts()["ingest_runs"] == 0


def test_no_key_is_an_input_error(store, monkeypatch):
    monkeypatch.delenv("PAGERDUTY_TOKEN", raising=False)
    with pytest.raises(InputError, match="PAGERDUTY_TOKEN"):
        ingest_pagerduty(store)


def test_service_maps_from_json_and_csv(tmp_path):
    (tmp_path / "m.json").write_text('{"PIJ90N7": "mail"}')
    (tmp_path / "m.csv").write_text("pagerduty_service,service\nMy Mail Service,mail\n")
    assert read_service_map(tmp_path / "m.json") == {"PIJ90N7": "mail"}
    assert read_service_map(tmp_path / "m.csv") == {"My Mail Service": "mail"}
    (tmp_path / "bad.json").write_text('["mail"]')
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    for bad in ("bad.json", "bad.csv", "missing.csv"):
        with pytest.raises(InputError, match="service map"):
            read_service_map(tmp_path / bad)


def test_cli_service_map_and_one_line_errors(tmp_path, capfd, monkeypatch):
    import releaserisk.ingest.pagerduty as module
    from releaserisk.cli import main

    replay = Replay(ok(page([incident(1)])), (401, {"error": {"message": "Unauthorized", "code": 2006}}, {}))
    real = module._client
    monkeypatch.setattr(module, "_client", lambda *a: real(*a[:4], replay.transport))
    monkeypatch.setenv("PAGERDUTY_TOKEN", TOKEN)
    (tmp_path / "map.csv").write_text("pagerduty_service,service\nMy Mail Service,mail\n")
    args = ["--db", str(tmp_path / "s.duckdb"), "ingest", "pagerduty", "--service-map", str(tmp_path / "map.csv")]
    assert main(args) == 0
    assert capfd.readouterr().out.startswith("ingested api.pagerduty.com from PagerDuty: incidents 1 (1 API calls)")
    assert main(args) == 2
    captured = capfd.readouterr()
    assert captured.err == "error: PagerDuty rejected the API key (401): set PAGERDUTY_TOKEN to a valid REST API key\n"
    (tmp_path / "map.csv").write_text("just one column\nx\n")
    assert main(args) == 2 and "error: the service map" in capfd.readouterr().err
