"""Jira ingestion against replayed REST v2 responses shaped as the Jira API docs' search examples (`responses`)."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from releaserisk.errors import InputError, JiraError
from releaserisk.ingest.jira import ingest_jira

SERVER = "https://jira.example.com"
API = f"{SERVER}/rest/api/2"
TOKEN = "jira-pat-never-printed-0123"


def server_info(kind="Server"):
    return {"baseUrl": SERVER, "version": "9.12.0", "versionNumbers": [9, 12, 0], "deploymentType": kind,
            "buildNumber": 9120000, "serverTitle": "Jira"}  # fmt: skip


FIELDS = [
    {"id": "summary", "name": "Summary", "custom": False, "clauseNames": ["summary"]},
    {"id": "customfield_10050", "name": "Severity", "custom": True, "clauseNames": ["cf[10050]", "Severity"]},
]


def issue(key, kind="Bug", *, labels=(), created="2024-05-02T10:00:00.000+0200", resolved=None, **fields):
    # docs.atlassian.com/software/jira/docs/api/REST/9.12.0/#api/2/search (trimmed)
    return {"id": str(10000 + int(key.split("-")[1])), "key": key, "self": f"{API}/issue/{key}", "fields": {
        "summary": f"{key} summary", "issuetype": {"id": "1", "name": kind, "subtask": False},
        "labels": list(labels), "priority": {"id": "2", "name": "High"}, "created": created,
        "updated": "2024-05-03T10:00:00.000+0000", "resolutiondate": resolved,
        "components": [{"id": "10100", "name": "checkout"}], **fields}}  # fmt: skip


def add_connection(rsps, kind="Server"):
    rsps.get(f"{API}/serverInfo", json=server_info(kind))
    rsps.get(f"{API}/field", json=FIELDS)


def add_search(rsps, pages):
    total = sum(len(p) for p in pages)
    start = 0
    for items in pages:
        match = [matchers.query_param_matcher({"startAt": str(start)}, strict_match=False)]
        rsps.get(f"{API}/search", json={"startAt": start, "maxResults": 100, "total": total, "issues": items},
                 match=match)  # fmt: skip
        start += len(items)


def ingest(store, **kwargs):
    kwargs.setdefault("token", TOKEN)
    return ingest_jira(store, SERVER, "project = SHOP ORDER BY created DESC", retries=1, **kwargs)


@pytest.fixture
def with_repo(store, git_repo):
    from releaserisk.ingest.git import ingest_git

    git_repo.write("a.py", "x = 1\n")
    git_repo.commit("start")
    git_repo.write("a.py", "x = 2\n")
    cited = git_repo.commit("SHOP-1: keep the cart on refresh")
    ingest_git(store, git_repo.path, name="shop")
    return cited


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    import jira.resilientsession

    monkeypatch.setattr(jira.resilientsession.time, "sleep", lambda seconds: None)


@responses.activate
def test_two_pages_of_bug_issues_mark_the_commits_citing_them(store, with_repo):
    add_connection(responses)
    add_search(responses, [[issue("SHOP-1", labels=["ui"]), issue("SHOP-2", "Story")], [issue("SHOP-3")]])
    result = ingest(store)
    assert result.counts == {"issues": 3}
    rows = store.query("SELECT repo, issue, labels, opened_at FROM issues ORDER BY issue")
    assert rows["issue"].tolist() == ["SHOP-1", "SHOP-2", "SHOP-3"] and set(rows["repo"]) == {"shop"}
    assert list(rows["labels"][0]) == ["Bug", "ui"] and str(rows["opened_at"][0]) == "2024-05-02 08:00:00+00:00"
    assert store.execute("SELECT fix FROM change_features WHERE sha = ?", [with_repo]).fetchone()[0]
    searches = [c.request.url for c in responses.calls if "/search" in c.request.url]
    jql = parse_qs(urlsplit(searches[0]).query)["jql"][0]
    assert jql == "project = SHOP ORDER BY updated ASC" and len(searches) == 2
    auth = responses.calls[0].request.headers["Authorization"]
    assert auth == f"Bearer {TOKEN}" and TOKEN not in str(store.query("SELECT * FROM ingest_runs").to_dict())


@responses.activate
def test_incidents_with_severity_field_and_components_as_services(store):
    add_connection(responses)
    add_search(responses, [[
        issue("OPS-7", "Incident", resolved="2024-05-02T11:30:00.000+0000", customfield_10050={"value": "Sev 1"},
              summary="Checkout down, root cause: abcdef1234"),
        issue("OPS-8", "Incident")]])  # fmt: skip
    ingest(store, as_="incidents", severity_field="customfield_10050", service_map={"checkout": "shop"})
    rows = store.query("SELECT * FROM incidents ORDER BY incident_id")
    assert rows["incident_id"].tolist() == ["jira:OPS-7", "jira:OPS-8"] and set(rows["service"]) == {"shop"}
    assert rows["severity"].tolist() == ["Sev 1", "High"] and rows["cause_sha"][0] == "abcdef1234"
    assert str(rows["resolved_at"][0]) == "2024-05-02 11:30:00+00:00" and rows["resolved_at"].isna()[1]


@responses.activate
def test_a_rerun_adds_the_watermark_to_the_query(store, with_repo):
    add_connection(responses)
    add_search(responses, [[issue("SHOP-1")]])
    ingest(store)
    ingest(store)
    last = [c.request.url for c in responses.calls if "/search" in c.request.url][-1]
    jql = parse_qs(urlsplit(last).query)["jql"][0]
    assert jql == '(project = SHOP) AND updated >= "2024/05/02 10:00" ORDER BY updated ASC'


@responses.activate
def test_jira_cloud_pages_with_next_page_tokens(store, with_repo):
    add_connection(responses, "Cloud")
    responses.get(f"{API}/search/jql", json={"issues": [issue("SHOP-1")], "nextPageToken": "t2", "isLast": False},
                  match=[lambda r: ("nextPageToken" not in r.url, "first page")])  # fmt: skip
    responses.get(f"{API}/search/jql", json={"issues": [issue("SHOP-2")], "isLast": True},
                  match=[matchers.query_param_matcher({"nextPageToken": "t2"}, strict_match=False)])  # fmt: skip
    assert ingest(store).counts == {"issues": 2}


@responses.activate
def test_rate_limit_is_retried(store, with_repo):
    add_connection(responses)
    responses.get(
        f"{API}/search", status=429, json={"errorMessages": ["Rate limit exceeded"]}, headers={"Retry-After": "1"}
    )
    add_search(responses, [[issue("SHOP-1")]])
    assert ingest(store).counts == {"issues": 1}


@responses.activate
def test_rate_limit_without_waiting_stops_with_nothing_loaded(store, with_repo):
    add_connection(responses)
    responses.get(
        f"{API}/search", status=429, json={"errorMessages": ["Rate limit exceeded"]}, headers={"Retry-After": "60"}
    )
    with pytest.raises(JiraError, match="rate limit reached"):
        ingest(store, wait=False)
    assert store.counts()["issues"] == 0


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message"),
    [
        (401, {"errorMessages": ["You are not authenticated"]}, None, "rejected the credentials"),
        (403, {"errorMessages": ["Forbidden"]}, None, "permission denied"),
        (404, {"errorMessages": ["Not found"]}, None, "404 Not Found"),
        (500, {"errorMessages": ["Internal server error"]}, None, r"server error \(500\)"),
        (200, "<html><body>Log in - Jira</body></html>", "text/html", "not the JSON"),
        (200, '{"startAt": 0, "issues": [{"key": "SHOP-1", "fie', "application/json", "not the JSON"),
        (200, {"startAt": 0, "total": 1}, None, "not the JSON"),
    ],
)
@responses.activate
def test_errors_are_one_line_and_leave_the_store_untouched(store, with_repo, status, body, content_type, message):
    add_connection(responses)
    kwargs = {"json": body} if content_type is None else {"body": body, "content_type": content_type}
    responses.get(re.compile(re.escape(f"{API}/search") + r"\?.*"), status=status, **kwargs)
    with pytest.raises(JiraError, match=message) as info:
        ingest(store)
    assert TOKEN not in str(info.value) and "\n" not in str(info.value) and SERVER in str(info.value)
    assert store.counts()["issues"] == 0


def test_issues_need_a_repository_and_the_kind_is_checked(store):
    with pytest.raises(InputError, match="ingest git first"):
        ingest(store)
    with pytest.raises(InputError, match="--as must be one of issues, incidents"):
        ingest(store, as_="bugs")


@responses.activate
def test_cli_incidents_and_a_one_line_error(tmp_path, capfd, monkeypatch):
    from releaserisk.cli import main

    monkeypatch.setenv("JIRA_TOKEN", TOKEN)
    monkeypatch.delenv("JIRA_EMAIL", raising=False)
    add_connection(responses)
    add_search(responses, [[issue("OPS-7", "Incident")]])
    args = ["--db", str(tmp_path / "s.duckdb"), "ingest", "jira", "--server", SERVER, "--jql", "project = OPS",
            "--as", "incidents"]  # fmt: skip
    assert main(args) == 0
    assert capfd.readouterr().out.startswith(f"ingested {SERVER} from Jira: incidents 1")
    responses.reset()
    responses.get(f"{API}/serverInfo", status=401, json={"errorMessages": ["You are not authenticated"]})
    assert main(args) == 2
    captured = capfd.readouterr()
    assert captured.err.startswith("error: Jira at https://jira.example.com rejected the credentials (401)")
    assert len(captured.err.splitlines()) == 1 and TOKEN not in captured.err
