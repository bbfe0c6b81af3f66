"""GitHub ingestion against replayed REST responses (documented payload shapes), via `responses`."""

import re

import pytest
import responses
from responses import matchers

from releaserisk.errors import GitHubError
from releaserisk.ingest.github import ingest_github

API = "https://api.github.com"
REPO = f"{API}/repos/acme/shop"
TOKEN = "ghp_test_token_never_printed_123"
RESET = str(2_000_000_000)  # a reset time in the future, as GitHub sends it


def url(target: str) -> re.Pattern:
    """Match a payload URL as PyGithub requests it (it spells out :443; payloads must not)."""
    path = target.removeprefix(API)
    return re.compile(r"https://api\.github\.com(?::443)?" + re.escape(path) + r"(?:\?.*)?$")


def user(login):
    return {"login": login, "id": hash(login) % 10**6, "type": "User", "url": f"{API}/users/{login}"}


def pull(number, updated, merged=True):
    return {
        "url": f"{REPO}/pulls/{number}", "id": 1000 + number, "number": number, "state": "closed",
        "title": f"<b>PR {number}</b>", "user": user("alice"), "labels": [{"name": "feature", "id": 1}],
        "created_at": "2024-05-01T08:00:00Z", "updated_at": updated, "closed_at": "2024-05-02T08:00:00Z",
        "merged_at": "2024-05-02T08:00:00Z" if merged else None, "merge_commit_sha": f"{number:040d}",
        "base": {"ref": "main", "sha": "b" * 40}, "head": {"ref": f"topic-{number}", "sha": "c" * 40},
        "commits_url": f"{REPO}/pulls/{number}/commits", "review_comments_url": f"{REPO}/pulls/{number}/comments",
    }  # fmt: skip


def pull_detail(number, updated):
    return {**pull(number, updated), "additions": 10 * number, "deletions": number, "changed_files": 2,
            "merged": True, "comments": 0, "review_comments": 1, "commits": 1}  # fmt: skip


def first_page(request):
    """Match only the first page of a listing (no page parameter)."""
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(request.url).query)
    return "page" not in query, "has a page parameter"


def add_pulls(rsps, numbers_by_page, updated="2024-05-03T00:00:00Z"):
    pages = len(numbers_by_page)
    for page, numbers in enumerate(numbers_by_page, 1):
        headers = {}
        if page < pages:
            headers["Link"] = f'<{REPO}/pulls?state=all&page={page + 1}>; rel="next"'
        match = [matchers.query_param_matcher({"page": str(page)}, strict_match=False)] if page > 1 else []
        if page == 1:
            match = [first_page]
        rsps.get(url(f"{REPO}/pulls"), json=[pull(n, updated) for n in numbers], headers=headers, match=match)
        for n in numbers:
            rsps.get(url(f"{REPO}/pulls/{n}"), json=pull_detail(n, updated))
            rsps.get(url(f"{REPO}/pulls/{n}/commits"), json=[{
                "sha": f"{n:039d}a", "url": f"{REPO}/commits/{n:039d}a",
                "commit": {"author": {"name": "A", "email": "a@x", "date": "2024-04-30T10:00:00Z"},
                           "committer": {"name": "A", "email": "a@x", "date": "2024-04-30T10:00:00Z"},
                           "message": "work"}}])  # fmt: skip
            rsps.get(url(f"{REPO}/pulls/{n}/reviews"), json=[{
                "id": n, "user": user("bob"), "state": "APPROVED", "submitted_at": "2024-05-01T12:00:00Z",
                "body": ""}])  # fmt: skip
            rsps.get(url(f"{REPO}/pulls/{n}/comments"), json=[{
                "id": 50 + n, "user": user("carol"), "created_at": "2024-05-01T09:30:00Z", "body": "nit",
                "path": "a.py"}])  # fmt: skip


def add_repo(rsps):
    rsps.get(url(REPO), json={"id": 1, "name": "shop", "full_name": "acme/shop", "url": REPO, "owner": user("acme"),
                         "private": False})  # fmt: skip


def add_deployments(rsps):
    rsps.get(url(f"{REPO}/deployments"), json=[
        {"id": 11, "url": f"{REPO}/deployments/11", "sha": "d" * 40, "environment": "production",
         "created_at": "2024-05-02T09:00:00Z", "updated_at": "2024-05-02T09:10:00Z",
         "statuses_url": f"{REPO}/deployments/11/statuses", "creator": user("deploy-bot")},
        {"id": 12, "url": f"{REPO}/deployments/12", "sha": "e" * 40, "environment": "production",
         "created_at": "2024-05-03T09:00:00Z", "updated_at": "2024-05-03T09:00:00Z",
         "statuses_url": f"{REPO}/deployments/12/statuses", "creator": user("deploy-bot")},
    ])  # fmt: skip
    rsps.get(url(f"{REPO}/deployments/11/statuses"), json=[
        {"id": 2, "state": "failure", "created_at": "2024-05-02T09:12:00Z", "url": f"{REPO}/deployments/11/statuses/2"},
        {"id": 1, "state": "in_progress", "created_at": "2024-05-02T09:01:00Z",
         "url": f"{REPO}/deployments/11/statuses/1"},
    ])  # fmt: skip
    rsps.get(url(f"{REPO}/deployments/12/statuses"), json=[
        {"id": 3, "state": "in_progress", "created_at": "2024-05-03T09:01:00Z",
         "url": f"{REPO}/deployments/12/statuses/3"}])  # fmt: skip


def add_issues(rsps):
    rsps.get(url(f"{REPO}/issues"), json=[
        {"id": 70, "number": 7, "title": "Checkout down", "state": "closed", "user": user("oncall"),
         "labels": [{"name": "incident", "id": 5}, {"name": "sev1", "id": 6}],
         "created_at": "2024-05-02T10:00:00Z", "closed_at": "2024-05-02T11:30:00Z",
         "updated_at": "2024-05-02T11:30:00Z", "body": "Impact...\nroot cause: " + "d" * 12 + "\n",
         "url": f"{REPO}/issues/7", "pull_request": None},
        {"id": 80, "number": 8, "title": "a PR in the issues list", "state": "open", "user": user("x"),
         "labels": [], "created_at": "2024-05-02T10:00:00Z", "updated_at": "2024-05-02T10:00:00Z",
         "pull_request": {"url": f"{REPO}/pulls/8"}, "url": f"{REPO}/issues/8", "body": None},
    ])  # fmt: skip


def ingest(store, **kwargs):
    return ingest_github(store, "acme/shop", token=TOKEN, throttle=0, retries=2, **kwargs)


@responses.activate
def test_full_ingest_with_pagination(store):
    add_repo(responses)
    add_pulls(responses, [[3, 2], [1]])
    add_deployments(responses)
    add_issues(responses)
    result = ingest(store)
    # 3 PRs, 3 commits, 6 reviews; the one incident issue carries no bug label
    assert result.counts == {"pulls": 12, "deployments": 1, "incidents": 1, "issues": 0}
    prs = store.query("SELECT number, title, additions, labels FROM pull_requests ORDER BY number")
    assert prs["number"].tolist() == [1, 2, 3] and prs["additions"].tolist() == [10, 20, 30]
    assert list(prs["labels"][0]) == ["feature"] and prs["title"][0] == "<b>PR 1</b>"
    reviews = store.query("SELECT reviewer, state FROM pr_reviews ORDER BY reviewer, number")
    assert set(reviews["state"]) == {"APPROVED", "COMMENTED"} and len(reviews) == 6
    deployment = store.query("SELECT * FROM deployments").iloc[0]
    assert deployment.status == "failure" and str(deployment.finished_at) == "2024-05-02 09:12:00+00:00"
    incident = store.query("SELECT * FROM incidents").iloc[0]
    assert incident.cause_sha == "d" * 12 and incident.severity == "sev1"
    assert TOKEN not in str(store.query("SELECT * FROM ingest_runs").to_dict())


@responses.activate
def test_incremental_run_stops_at_the_watermark(store):
    add_repo(responses)
    add_pulls(responses, [[3, 2], [1]])
    add_deployments(responses)
    add_issues(responses)
    ingest(store)
    calls = len(responses.calls)
    ingest(store)
    pulls_calls = [c for c in responses.calls[calls:] if re.search(r"/pulls(\?|$)", c.request.url)]
    assert len(pulls_calls) == 1  # the first page shows nothing newer than the watermark: stop there
    assert store.counts()["pull_requests"] == 3


@responses.activate
def test_server_error_then_success_is_retried(store):
    add_repo(responses)
    responses.get(url(f"{REPO}/pulls"), status=502, json={"message": "Bad gateway"})
    add_pulls(responses, [[1]])
    add_deployments(responses)
    add_issues(responses)
    assert ingest(store).counts["pulls"] == 4


@pytest.mark.parametrize(
    ("status", "body", "headers", "message"),
    [
        (404, {"message": "Not Found"}, {}, "not found on GitHub"),
        (401, {"message": "Bad credentials"}, {}, "rejected the token"),
        (403, {"message": "Resource not accessible by integration"}, {}, "permission denied"),
        (
            403,
            {"message": "API rate limit exceeded"},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": RESET},
            "rate limit exhausted",
        ),
        (503, {"message": "unavailable"}, {}, "after retries"),
    ],
)
@responses.activate
def test_errors_are_clear_and_commit_nothing(store, status, body, headers, message):
    add_repo(responses)
    responses.get(url(f"{REPO}/pulls"), status=status, json=body, headers=headers)
    with pytest.raises(GitHubError, match=message) as info:
        ingest(store, wait=False)
    assert TOKEN not in str(info.value) and "acme/shop" in str(info.value)
    assert store.counts()["pull_requests"] == 0 and store.counts()["ingest_runs"] == 0


@responses.activate
def test_rate_limit_wait_then_resume(store, monkeypatch):
    import releaserisk.ingest.github as module

    slept = []
    monkeypatch.setattr(module.time, "sleep", slept.append)
    add_repo(responses)
    responses.get(url(f"{REPO}/pulls"), status=403, json={"message": "API rate limit exceeded"},
                  headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": RESET})  # fmt: skip
    add_pulls(responses, [[1]])
    add_deployments(responses)
    add_issues(responses)
    messages = []
    result = ingest(store, wait=True, notify=messages.append)
    assert result.counts["pulls"] == 4 and slept and "rate limit" in messages[0]


@responses.activate
def test_bug_issues_are_read_per_bug_label_once_each(store):
    add_repo(responses)
    responses.get(url(f"{REPO}/pulls"), json=[])
    responses.get(url(f"{REPO}/deployments"), json=[])

    def issue(number, labels, pull_request=None):
        return {"id": 100 + number, "number": number, "title": f"issue {number}", "state": "closed",
                "user": user("dev"), "labels": [{"name": n, "id": i} for i, n in enumerate(labels)],
                "created_at": "2024-05-01T10:00:00Z", "closed_at": "2024-05-03T10:00:00Z",
                "updated_at": "2024-05-03T10:00:00Z", "body": "", "url": f"{REPO}/issues/{number}",
                "pull_request": pull_request}  # fmt: skip

    def listing(label, items):
        match = [matchers.query_param_matcher({"labels": label}, strict_match=False)]
        responses.get(url(f"{REPO}/issues"), json=items, match=match)

    listing("incident", [])
    listing("bug", [issue(21, ["Bug", "ui"]), issue(23, ["bug"], pull_request={"url": f"{REPO}/pulls/23"})])
    listing("Regression", [issue(22, ["regression"]), issue(21, ["Bug", "regression"]), issue(24, ["docs"])])
    result = ingest(store, bug_labels=["bug", "Regression"])
    rows = store.query("SELECT repo, issue, labels, opened_at FROM issues ORDER BY issue")
    # 21 once though listed twice; 23 is a pull request; 24 lacks a bug label whatever the server matched
    assert result.counts["issues"] == 2 and rows["issue"].tolist() == ["21", "22"]
    assert rows["repo"].tolist() == ["shop", "shop"] and list(rows["labels"][0]) == ["Bug", "ui"]
    assert str(rows["opened_at"][0]) == "2024-05-01 10:00:00+00:00"


@responses.activate
def test_unknown_repo_name_format(store):
    from releaserisk.errors import InputError

    with pytest.raises(InputError, match="OWNER/REPO"):
        ingest_github(store, "just-a-name", token=TOKEN)


@responses.activate
def test_cli_reads_token_from_env_and_never_prints_it(tmp_path, capsys, monkeypatch):
    from releaserisk.cli import main

    monkeypatch.setenv("MY_TOKEN", TOKEN)
    responses.get(url(REPO), status=401, json={"message": "Bad credentials"})
    code = main(["--db", str(tmp_path / "s.duckdb"), "ingest", "github", "acme/shop", "--token-env", "MY_TOKEN"])
    captured = capsys.readouterr()
    assert code == 2 and "rejected the token" in captured.err
    assert TOKEN not in captured.err + captured.out
    assert responses.calls[0].request.headers["Authorization"] == f"token {TOKEN}"


@responses.activate
@pytest.mark.parametrize(("name", "stored"), [(None, "shop"), ("storefront", "storefront")])
def test_every_row_names_the_repository_as_git_ingestion_does(store, name, stored):
    """Pull requests used to be stored as 'acme/shop' while deployments, issues and
    ``ingest git`` said 'shop': no pull request ever reached a deployment or a bug label."""
    import pandas as pd

    from releaserisk.dora import dora_metrics

    add_repo(responses)
    add_pulls(responses, [[1]])
    add_deployments(responses)
    add_issues(responses)
    ingest(store, name=name)
    for table in ("pull_requests", "pr_commits", "pr_reviews", "deployments"):
        assert set(store.query(f"SELECT DISTINCT repo FROM {table}")["repo"]) == {stored}, table
    assert set(store.query("SELECT service FROM incidents")["service"]) == {stored}
    # PR 1's merge commit reaches production: its deploy phase is measured
    deployed = pd.Timestamp("2024-05-02T10:00:00Z")
    store.upsert("deployments", pd.DataFrame({
        "deployment_id": ["ship"], "service": [stored], "repo": [stored], "environment": ["production"],
        "sha": ["f" * 40], "started_at": [deployed], "finished_at": [deployed], "status": ["success"],
        "kind": ["regular"]}))  # fmt: skip
    store.upsert("deployment_changes", pd.DataFrame({
        "deployment_id": ["ship"], "repo": [stored], "sha": [f"{1:040d}"], "derived": [False],
        "committed_at": [pd.Timestamp("2024-05-02T08:00:00Z")]}))  # fmt: skip
    prs = dora_metrics(store, "2024-05-01", "2024-05-08").pull_requests
    assert prs["deployment_id"].tolist() == ["ship"] and prs["deploy_minutes"].tolist() == [120.0]


def test_an_empty_store_name_is_refused(store):
    from releaserisk.errors import InputError

    for blank in ("", " "):
        with pytest.raises(InputError, match="cannot be empty"):
            ingest_github(store, "acme/shop", name=blank, token=TOKEN)


def deployment(number, sha, created):
    return {"id": number, "url": f"{REPO}/deployments/{number}", "sha": sha, "environment": "production",
            "created_at": created, "updated_at": created, "statuses_url": f"{REPO}/deployments/{number}/statuses",
            "creator": user("deploy-bot")}  # fmt: skip


def status(number, state, created, deployment_number):
    return {"id": number, "state": state, "created_at": created,
            "url": f"{REPO}/deployments/{deployment_number}/statuses/{number}"}  # fmt: skip


@responses.activate
def test_a_superseded_deployment_finishes_at_its_own_success_not_when_the_next_one_came(store):
    """GitHub marks a deployment ``inactive`` when the next one supersedes it: newest
    first, its statuses read inactive, success, in_progress. The inactive status' time is
    the next deployment's; apache/incubator-devlake#8654 read it as the finish."""
    add_repo(responses)
    responses.get(url(f"{REPO}/pulls"), json=[])
    responses.get(url(f"{REPO}/issues"), json=[])
    responses.get(url(f"{REPO}/deployments"), json=[
        deployment(22, "e" * 40, "2024-05-03T09:00:00Z"), deployment(21, "d" * 40, "2024-05-02T09:00:00Z"),
        deployment(20, "c" * 40, "2024-05-01T09:00:00Z")])  # fmt: skip
    responses.get(url(f"{REPO}/deployments/22/statuses"), json=[
        status(9, "success", "2024-05-03T09:05:00Z", 22),
        status(8, "in_progress", "2024-05-03T09:01:00Z", 22)])  # fmt: skip
    responses.get(url(f"{REPO}/deployments/21/statuses"), json=[
        status(7, "inactive", "2024-05-03T09:05:00Z", 21), status(6, "failure", "2024-05-02T09:07:00Z", 21),
        status(5, "in_progress", "2024-05-02T09:01:00Z", 21)])  # fmt: skip
    # only ever marked inactive (a deploy tool that reports nothing else): success when superseded
    responses.get(url(f"{REPO}/deployments/20/statuses"), json=[status(4, "inactive", "2024-05-01T09:30:00Z", 20)])
    ingest(store)
    rows = store.query("SELECT deployment_id, status, finished_at FROM deployments ORDER BY started_at")
    assert rows["status"].tolist() == ["success", "failure", "success"]
    assert [str(t) for t in rows["finished_at"]] == [
        "2024-05-01 09:30:00+00:00", "2024-05-02 09:07:00+00:00", "2024-05-03 09:05:00+00:00"]  # fmt: skip


@responses.activate
def test_a_release_on_an_annotated_tag_deploys_the_commit_the_tag_names(store, git_repo):
    from releaserisk.dora import dora_metrics
    from releaserisk.ingest.git import ingest_git

    git_repo.write("a.txt", "1\n")
    first = git_repo.commit("one")
    git_repo.write("a.txt", "2\n")
    second = git_repo.commit("two")
    ingest_git(store, git_repo.path, name="shop")
    add_repo(responses)
    for path in ("pulls", "deployments", "issues"):
        responses.get(url(f"{REPO}/{path}"), json=[])
    responses.get(url(f"{REPO}/releases"), json=[
        {"id": 2, "tag_name": "v1.1", "draft": False, "prerelease": False, "published_at": "2024-05-02T10:00:00Z",
         "url": f"{REPO}/releases/2", "name": "v1.1"},
        {"id": 1, "tag_name": "v1.0", "draft": False, "prerelease": False, "published_at": "2024-05-01T10:00:00Z",
         "url": f"{REPO}/releases/1", "name": "v1.0"}])  # fmt: skip
    tag_object = "a" * 40
    responses.get(url(f"{REPO}/git/ref/tags/v1.1"), json={  # the ref names the tag object (docs: "type": "tag")
        "ref": "refs/tags/v1.1", "url": f"{REPO}/git/refs/tags/v1.1",
        "object": {"type": "tag", "sha": tag_object, "url": f"{REPO}/git/tags/{tag_object}"}})  # fmt: skip
    responses.get(url(f"{REPO}/git/tags/{tag_object}"), json={
        "tag": "v1.1", "sha": tag_object, "url": f"{REPO}/git/tags/{tag_object}", "message": "v1.1",
        "tagger": {"name": "A", "email": "a@x", "date": "2024-05-02T09:00:00Z"},
        "object": {"type": "commit", "sha": second, "url": f"{REPO}/git/commits/{second}"}})  # fmt: skip
    responses.get(url(f"{REPO}/git/ref/tags/v1.0"), json={
        "ref": "refs/tags/v1.0", "url": f"{REPO}/git/refs/tags/v1.0",
        "object": {"type": "commit", "sha": first, "url": f"{REPO}/git/commits/{first}"}})  # fmt: skip
    assert ingest(store, release_environment="production").counts["releases"] == 2
    shas = store.query("SELECT sha FROM deployments ORDER BY finished_at")["sha"].tolist()
    assert shas == [first, second]
    assert store.query("SELECT sha FROM deployment_changes")["sha"].tolist() == [second]
    # before the fix the tag object was stored: dora now says so
    store.execute("UPDATE deployments SET sha = ? WHERE sha = ?", [tag_object, second])
    notes = dora_metrics(store, "2024-04-28", "2024-05-06").notes
    assert any("no commit of the ingested history" in n and "github-release:acme/shop:v1.1" in n for n in notes)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"body": "<html><body>Sign in to your proxy</body></html>", "content_type": "text/html"}, "not the JSON"),
        ({"body": '[{"number": 1, "title": "cut off', "content_type": "application/json"}, "malformed JSON"),
        ({"json": {"message": "a listing should be a list"}}, "not the JSON"),
    ],
)
@responses.activate
def test_a_server_answering_garbage_is_one_clear_error_and_commits_nothing(store, response, message):
    add_repo(responses)
    responses.get(url(f"{REPO}/pulls"), status=200, **response)
    with pytest.raises(GitHubError, match=message) as info:
        ingest(store, wait=False)
    assert "acme/shop" in str(info.value) and "\n" not in str(info.value)
    assert store.counts()["pull_requests"] == 0 and store.counts()["ingest_runs"] == 0


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (403, {"message": "Resource not accessible by integration"}, {}),
        (403, {"message": "API rate limit exceeded"}, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": RESET}),
        (403, {"message": "You have exceeded a secondary rate limit"}, {"Retry-After": "0"}),
        (200, {"message": "not a list"}, {}),
    ],
)
@responses.activate
def test_cli_refusals_and_garbage_print_one_line_and_exit_2(tmp_path, capfd, monkeypatch, status, body, headers):
    """PyGithub's own stderr handler printed each refused request and retry before our error."""
    import releaserisk.ingest.github as module
    from releaserisk.cli import main

    real = module._client
    monkeypatch.setattr(module, "_client", lambda token, base_url, throttle, retries, wait: real(
        token, base_url, 0, 1, wait))  # fmt: skip
    add_repo(responses)
    responses.get(url(f"{REPO}/pulls"), status=status, json=body, headers=headers)
    code = main(["--db", str(tmp_path / "s.duckdb"), "ingest", "github", "acme/shop", "--no-wait"])
    captured = capfd.readouterr()
    assert code == 2 and captured.err.startswith("error: ") and len(captured.err.strip().splitlines()) == 1


@responses.activate
def test_a_release_a_file_declared_a_hotfix_is_kept_as_the_file_wrote_it(store, tmp_path, capsys):
    """Explicit rows win: a GitHub release re-read by the next run does not reset the file's kind."""
    import pandas as pd

    from releaserisk.ingest.tabular import ingest_file

    add_repo(responses)
    for path in ("pulls", "deployments", "issues"):
        responses.get(url(f"{REPO}/{path}"), json=[])
    responses.get(url(f"{REPO}/releases"), json=[
        {"id": 1, "tag_name": "v1.0", "draft": False, "prerelease": False, "published_at": "2024-05-01T10:00:00Z",
         "url": f"{REPO}/releases/1", "name": "v1.0"}])  # fmt: skip
    responses.get(url(f"{REPO}/git/ref/tags/v1.0"), json={
        "ref": "refs/tags/v1.0", "url": f"{REPO}/git/refs/tags/v1.0",
        "object": {"type": "commit", "sha": "c" * 40, "url": f"{REPO}/git/commits/{'c' * 40}"}})  # fmt: skip
    declared = tmp_path / "hotfixes.csv"
    pd.DataFrame([{"deployment_id": "github-release:acme/shop:v1.0", "service": "shop", "environment": "production",
                   "sha": "c" * 40, "status": "success", "kind": "hotfix",
                   "finished_at": "2024-05-01T10:00:00Z"}]).to_csv(declared, index=False)  # fmt: skip
    ingest_file(store, "deployments", declared)
    result = ingest(store, release_environment="production")
    assert result.kept == {"hotfixes.csv": ["github-release:acme/shop:v1.0"]}
    assert "kept 1 deployment loaded from hotfixes.csv" in result.summary()
    assert store.query("SELECT kind, source FROM deployments").values.tolist() == [["hotfix", "hotfixes.csv"]]
