"""GitLab ingestion against replayed REST v4 responses shaped as docs.gitlab.com's examples (`responses`)."""

import re

import pytest
import responses
from responses import matchers

from releaserisk.errors import GitLabError
from releaserisk.ingest.gitlab import ingest_gitlab

API = "https://gitlab.example.com/api/v4"
PROJECT = f"{API}/projects/acme%2Fshop"
TOKEN = "glpat-test-token-never-printed"


def url(path: str) -> re.Pattern:
    return re.compile(re.escape(PROJECT + path) + r"(?:\?.*)?$")


def user(username):
    return {"id": hash(username) % 1000, "username": username, "name": username.title(), "state": "active",
            "web_url": f"https://gitlab.example.com/{username}"}  # fmt: skip


def merge_request(iid, updated):
    # docs.gitlab.com/ee/api/merge_requests.html#list-project-merge-requests (trimmed)
    return {"id": 1000 + iid, "iid": iid, "project_id": 3, "title": f"MR {iid}", "state": "merged",
            "created_at": "2024-05-01T08:00:00.000Z", "updated_at": updated, "merged_at": "2024-05-02T08:00:00.000Z",
            "closed_at": None, "target_branch": "main", "source_branch": f"topic-{iid}", "author": user("alice"),
            "labels": ["bug"] if iid == 1 else [], "sha": "c" * 40, "merge_commit_sha": f"{iid:040d}",
            "squash_commit_sha": None, "web_url": f"https://gitlab.example.com/acme/shop/-/merge_requests/{iid}",
            }  # fmt: skip


def add_project(rsps):
    rsps.get(url(""), json={"id": 3, "path_with_namespace": "acme/shop", "default_branch": "main",
                            "web_url": "https://gitlab.example.com/acme/shop"})  # fmt: skip


def first_page(request):
    from urllib.parse import parse_qs, urlsplit

    return "page" not in parse_qs(urlsplit(request.url).query), "has a page parameter"


def add_merge_requests(rsps, pages, updated="2024-05-03T00:00:00.000Z"):
    for index, iids in enumerate(pages, 1):
        headers = {}
        if index < len(pages):  # GitLab's offset pagination: a Link header to the next page
            headers["Link"] = f'<{PROJECT}/merge_requests?page={index + 1}&per_page=100&state=all>; rel="next"'
        match = [first_page] if index == 1 else [matchers.query_param_matcher({"page": str(index)}, strict_match=False)]
        rsps.get(url("/merge_requests"), json=[merge_request(i, updated) for i in iids], headers=headers, match=match)
        for iid in iids:
            rsps.get(url(f"/merge_requests/{iid}/commits"), json=[{
                "id": f"{iid:039d}a", "short_id": f"{iid:07d}", "title": "work", "author_name": "Alice",
                "author_email": "alice@example.com", "authored_date": "2024-04-30T10:00:00.000Z",
                "created_at": "2024-04-30T10:00:00.000Z", "message": "work"}])  # fmt: skip
            rsps.get(url(f"/merge_requests/{iid}/notes"), json=[
                {"id": 301, "body": "looks good, one nit", "author": user("bob"), "system": False,
                 "created_at": "2024-05-01T09:30:00.000Z", "noteable_type": "MergeRequest"},
                {"id": 302, "body": "thanks", "author": user("alice"), "system": False,
                 "created_at": "2024-05-01T09:40:00.000Z", "noteable_type": "MergeRequest"},
                {"id": 303, "body": "approved this merge request", "author": user("carol"), "system": True,
                 "created_at": "2024-05-01T12:00:00.000Z", "noteable_type": "MergeRequest"},
                {"id": 304, "body": "added 1 commit", "author": user("alice"), "system": True,
                 "created_at": "2024-05-01T12:30:00.000Z", "noteable_type": "MergeRequest"},
            ])  # fmt: skip


def deployment(number, status, sha, created, finished):
    # docs.gitlab.com/ee/api/deployments.html#list-project-deployments (trimmed)
    return {"id": number, "iid": number, "ref": "main", "sha": sha, "created_at": created, "updated_at": finished,
            "finished_at": finished if status in ("success", "failed", "canceled") else None, "status": status,
            "user": user("deployer"), "environment": {"id": 9, "name": "production", "slug": "production"},
            "deployable": {"id": 7, "status": status, "stage": "deploy", "name": "deploy"}}  # fmt: skip


def add_deployments(rsps):
    rsps.get(url("/deployments"), json=[
        deployment(42, "success", "d" * 40, "2024-05-02T09:00:00.000Z", "2024-05-02T09:10:00.000Z"),
        deployment(43, "failed", "e" * 40, "2024-05-03T09:00:00.000Z", "2024-05-03T09:05:00.000Z"),
        deployment(44, "running", "f" * 40, "2024-05-04T09:00:00.000Z", "2024-05-04T09:00:00.000Z"),
    ])  # fmt: skip


def issue(iid, labels, issue_type="issue", **extra):
    # docs.gitlab.com/ee/api/issues.html#list-project-issues (trimmed)
    return {"id": 500 + iid, "iid": iid, "project_id": 3, "title": f"issue {iid}", "state": "closed",
            "labels": labels, "issue_type": issue_type, "type": issue_type.upper(), "author": user("oncall"),
            "created_at": "2024-05-02T10:00:00.000Z", "closed_at": "2024-05-02T11:30:00.000Z",
            "updated_at": "2024-05-02T11:30:00.000Z", "description": "", **extra}  # fmt: skip


def add_issues(rsps):
    rsps.get(url("/issues"), json=[
        issue(7, ["customer"], "incident", severity="CRITICAL", description="Impact\nroot cause: " + "d" * 12),
        issue(8, ["incident", "severity::2"]),
        issue(9, ["Bug", "ui"]),
        issue(10, ["docs"]),
    ])  # fmt: skip


def add_all(rsps, pages=((3, 2), (1,))):
    add_project(rsps)
    add_merge_requests(rsps, [list(p) for p in pages])
    add_deployments(rsps)
    add_issues(rsps)


def ingest(store, **kwargs):
    return ingest_gitlab(store, "acme/shop", base_url="https://gitlab.example.com", token=TOKEN, retries=2, **kwargs)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    import gitlab.utils

    slept = []
    monkeypatch.setattr(gitlab.utils.time, "sleep", slept.append)
    return slept


@responses.activate
def test_two_pages_of_merge_requests_deployments_and_issues(store):
    add_all(responses)
    result = ingest(store)
    # 3 MRs + 3 commits + 6 reviews (bob's comment and carol's approval each; alice's own comment is no review)
    assert result.counts == {"merge_requests": 12, "deployments": 2, "issues": 3}
    assert result.calls == len(responses.calls) == 1 + 2 + 3 * 2 + 1 + 1
    prs = store.query("SELECT number, base_ref, merge_commit_sha, labels FROM pull_requests ORDER BY number")
    assert prs["number"].tolist() == [1, 2, 3] and list(prs["labels"][0]) == ["bug"]
    reviews = store.query("SELECT reviewer, state, submitted_at FROM pr_reviews WHERE number = 1 ORDER BY submitted_at")
    assert reviews[["reviewer", "state"]].values.tolist() == [["bob", "COMMENTED"], ["carol", "APPROVED"]]
    deployments = store.query("SELECT deployment_id, status, finished_at, environment FROM deployments ORDER BY 1")
    assert deployments["status"].tolist() == ["success", "failure"]  # the running one is not finished
    assert deployments["deployment_id"][0] == "gitlab:acme/shop:42" and set(deployments["environment"]) == {
        "production"
    }
    assert str(deployments["finished_at"][0]) == "2024-05-02 09:10:00+00:00"
    incidents = store.query("SELECT incident_id, severity, cause_sha FROM incidents ORDER BY incident_id")
    assert incidents["incident_id"].tolist() == ["gitlab:acme/shop#7", "gitlab:acme/shop#8"]
    assert incidents["severity"].tolist() == ["critical", "severity::2"] and incidents["cause_sha"][0] == "d" * 12
    bugs = store.query("SELECT repo, issue, labels FROM issues")
    assert bugs["issue"].tolist() == ["9"] and bugs["repo"].tolist() == ["shop"]
    runs = store.query("SELECT source, watermark FROM ingest_runs ORDER BY source")
    assert runs["source"].tolist() == ["gitlab:acme/shop:deployments", "gitlab:acme/shop:issues",
                                       "gitlab:acme/shop:merge_requests"]  # fmt: skip
    assert TOKEN not in str(runs.to_dict()) and "PRIVATE-TOKEN" in responses.calls[0].request.headers


@responses.activate
def test_a_rerun_asks_only_for_what_changed_since_the_watermarks(store):
    add_all(responses)
    ingest(store)
    before = store.counts()
    calls = len(responses.calls)
    ingest(store)
    listed = re.compile(r"/(merge_requests|deployments|issues)\?")
    listings = [
        c.request.url for c in responses.calls[calls:] if listed.search(c.request.url) and "page=" not in c.request.url
    ]
    assert len(listings) == 3 and all("updated_after=2024-05-0" in u for u in listings)
    assert store.counts() == {**before, "ingest_runs": before["ingest_runs"] + 3}


@responses.activate
def test_rate_limit_is_waited_out_then_the_run_goes_on(store, no_sleep):
    add_project(responses)
    responses.get(url("/merge_requests"), status=429, json={"message": "429 Too Many Requests"},
                  headers={"Retry-After": "7", "RateLimit-Remaining": "0"})  # fmt: skip
    add_merge_requests(responses, [[1]])
    add_deployments(responses)
    add_issues(responses)
    assert ingest(store).counts["merge_requests"] == 4 and no_sleep == [7]


@responses.activate
def test_rate_limit_without_waiting_keeps_what_was_read_and_a_rerun_resumes(store):
    add_project(responses)
    add_merge_requests(responses, [[1]])
    responses.get(
        url("/deployments"), status=429, json={"message": "429 Too Many Requests"}, headers={"Retry-After": "60"}
    )
    with pytest.raises(GitLabError, match=r"rate limit reached .* re-run later to resume"):
        ingest(store, wait=False)
    assert store.counts()["pull_requests"] == 1 and store.counts()["deployments"] == 0
    responses.reset()
    add_project(responses)
    responses.get(url("/merge_requests"), json=[])
    add_deployments(responses)
    add_issues(responses)
    result = ingest(store, wait=False)
    assert result.counts == {"merge_requests": 0, "deployments": 2, "issues": 3}
    mr_listing = next(c.request.url for c in responses.calls if "/merge_requests?" in c.request.url)
    assert "updated_after=" in mr_listing  # the finished resource resumed from its watermark


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message"),
    [
        (401, {"message": "401 Unauthorized"}, None, "rejected the token"),
        (403, {"message": "403 Forbidden"}, None, "permission denied"),
        (404, {"message": "404 Project Not Found"}, None, "not found on https://gitlab.example.com"),
        (500, {"message": "500 Internal Server Error"}, None, r"server error \(500\)"),
        (200, "<html><body>Sign in · GitLab</body></html>", "text/html", "not the JSON"),
        (200, '[{"iid": 1, "title": "cut', "application/json", "not the JSON"),
        (200, {"message": "an object where a list belongs"}, None, "not the JSON"),
    ],
)
@responses.activate
def test_errors_are_one_line_and_leave_the_store_untouched(store, status, body, content_type, message):
    add_project(responses)
    kwargs = {"json": body} if content_type is None else {"body": body, "content_type": content_type}
    responses.get(url("/merge_requests"), status=status, **kwargs)
    with pytest.raises(GitLabError, match=message) as info:
        ingest(store)
    text = str(info.value)
    assert "acme/shop" in text and TOKEN not in text and "\n" not in text
    assert store.counts()["pull_requests"] == 0 and store.counts()["ingest_runs"] == 0


@responses.activate
def test_a_missing_project_is_named(store):
    responses.get(url(""), status=404, json={"message": "404 Project Not Found"})
    with pytest.raises(GitLabError, match="project acme/shop not found"):
        ingest(store)


@responses.activate
def test_releases_deploy_the_commit_gitlab_names(store):
    add_project(responses)
    for path in ("/merge_requests", "/deployments", "/issues"):
        responses.get(url(path), json=[])
    responses.get(url("/releases"), json=[  # docs.gitlab.com/ee/api/releases (trimmed)
        {"tag_name": "v1.1", "name": "v1.1", "released_at": "2024-05-02T10:00:00.000Z",
         "created_at": "2024-05-02T10:00:00.000Z", "upcoming_release": False,
         "commit": {"id": "a" * 40, "short_id": "aaaaaaaa", "title": "release"}},
        {"tag_name": "v2.0", "name": "v2.0", "released_at": "2030-01-01T00:00:00.000Z", "upcoming_release": True,
         "commit": {"id": "b" * 40}}])  # fmt: skip
    assert ingest(store, release_environment="production").counts["releases"] == 1
    row = store.query("SELECT deployment_id, sha, environment FROM deployments").iloc[0]
    assert row.deployment_id == "gitlab-release:acme/shop:v1.1" and row.sha == "a" * 40


@responses.activate
def test_bug_issues_mark_the_commits_that_cite_them_as_fixes(store, git_repo):
    from releaserisk.ingest.git import ingest_git

    git_repo.write("a.py", "x = 1\n")
    git_repo.commit("start")
    git_repo.write("a.py", "x = 2\n")
    cited = git_repo.commit("Handle the empty cart, closes #9")
    ingest_git(store, git_repo.path, name="shop")
    add_project(responses)
    for path in ("/merge_requests", "/deployments"):
        responses.get(url(path), json=[])
    add_issues(responses)
    ingest(store)
    assert store.execute("SELECT fix FROM change_features WHERE sha = ?", [cited]).fetchone()[0]


def test_a_project_path_is_checked(store):
    from releaserisk.errors import InputError

    with pytest.raises(InputError, match="GROUP/PROJECT"):
        ingest_gitlab(store, "shop", token=TOKEN)


@responses.activate
def test_cli_reads_the_token_from_the_environment_and_prints_one_line(tmp_path, capfd, monkeypatch):
    from releaserisk.cli import main

    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    db = str(tmp_path / "s.duckdb")
    args = ["--db", db, "ingest", "gitlab", "acme/shop", "--base-url", "https://gitlab.example.com"]
    add_all(responses)
    assert main(args) == 0
    out = capfd.readouterr().out
    assert out.startswith("ingested acme/shop from GitLab: merge_requests 12, deployments 2, issues 3")
    assert responses.calls[0].request.headers["PRIVATE-TOKEN"] == TOKEN
    responses.reset()
    responses.get(url(""), status=401, json={"message": "401 Unauthorized"})
    assert main(args) == 2
    captured = capfd.readouterr()
    assert captured.err.startswith("error: GitLab rejected the token") and len(captured.err.splitlines()) == 1
    assert TOKEN not in captured.err + captured.out


@responses.activate
def test_a_release_a_file_declared_a_hotfix_is_kept_as_the_file_wrote_it(store, tmp_path):
    """Explicit rows win over every derived deployment source, not only git-tags."""
    import pandas as pd

    from releaserisk.ingest.tabular import ingest_file

    add_project(responses)
    for path in ("/merge_requests", "/deployments", "/issues"):
        responses.get(url(path), json=[])
    responses.get(url("/releases"), json=[
        {"tag_name": "v1.1", "name": "v1.1", "released_at": "2024-05-02T10:00:00.000Z",
         "created_at": "2024-05-02T10:00:00.000Z", "upcoming_release": False, "commit": {"id": "a" * 40}},
        {"tag_name": "v1.0", "name": "v1.0", "released_at": "2024-05-01T10:00:00.000Z",
         "created_at": "2024-05-01T10:00:00.000Z", "upcoming_release": False, "commit": {"id": "b" * 40}}])  # fmt: skip
    declared = tmp_path / "hotfixes.csv"
    pd.DataFrame([{"deployment_id": "gitlab-release:acme/shop:v1.1", "service": "shop", "environment": "production",
                   "sha": "a" * 40, "status": "success", "kind": "hotfix",
                   "finished_at": "2024-05-02T10:00:00Z"}]).to_csv(declared, index=False)  # fmt: skip
    ingest_file(store, "deployments", declared)
    result = ingest(store, release_environment="production")
    assert result.counts["releases"] == 1 and result.kept == {"hotfixes.csv": ["gitlab-release:acme/shop:v1.1"]}
    assert "kept 1 deployment loaded from hotfixes.csv" in result.summary()
    kinds = store.query("SELECT deployment_id, kind FROM deployments ORDER BY 1").values.tolist()
    assert kinds == [["gitlab-release:acme/shop:v1.0", "regular"], ["gitlab-release:acme/shop:v1.1", "hotfix"]]
