"""``ingest SOURCE``: git, GitHub, GitLab, Jira, PagerDuty, release tags, files, Parquet snapshots, canary metrics."""

from __future__ import annotations

import argparse
import time

from releaserisk.choices import CANARY_ARMS, FLAG_FORMATS, JIRA_KINDS
from releaserisk.cli._base import EXIT_OK, EXIT_USAGE, add_format, open_db, positive_int, settings_of
from releaserisk.cli.output import (
    commit_progress,
    counted,
    diagnostic,
    emit,
    hint,
    org_progress,
    show_progress,
    table_listing,
)


def hint_unknown_repositories(store) -> None:
    """Say on stderr when deployments name repositories that have no ingested commits."""
    from releaserisk.dora import repository_hint

    message = repository_hint(store)
    if message:
        hint(message)


def cmd_ingest_git(args: argparse.Namespace) -> int:
    from releaserisk.ingest.git import default_workers, ingest_git

    started = time.perf_counter()
    with open_db(args) as store:
        result = ingest_git(
            store,
            args.path,
            name=args.name,
            rev=args.rev or "HEAD",
            settings=settings_of(args),
            progress=commit_progress() if show_progress(args) else None,
            workers=args.workers or default_workers(),
        )
        hint_unknown_repositories(store)
    seconds = time.perf_counter() - started
    payload = {**result.to_dict(), "seconds": round(seconds, 3)}
    text = (
        f"ingested {result.repo}: {result.new_commits:,} new commits "
        f"({result.total_commits:,} stored), {result.file_changes:,} file changes in {seconds:.1f} s"
    )
    emit(args, payload, text)
    return EXIT_OK


def cmd_ingest_org(args: argparse.Namespace) -> int:
    from releaserisk.ingest.org import ingest_org, read_org_manifest

    manifest = read_org_manifest(args.manifest)
    result = ingest_org(
        manifest,
        args.lake or manifest.lake,
        workers=args.workers,
        scheduler=args.scheduler,
        settings=settings_of(args),
        progress=org_progress(len(manifest.repos)) if show_progress(args) else None,
        compact=args.compact,
    )
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK if result.failed.empty else EXIT_USAGE


def cmd_ingest_file(args: argparse.Namespace) -> int:
    from releaserisk.ingest.tabular import ingest_file

    with open_db(args) as store:
        loaded = ingest_file(store, args.kind, args.file, assume_tz=args.assume_tz)
        links = store.counts()["deployment_changes"]
        if args.kind in ("deployments", "services"):
            hint_unknown_repositories(store)
    payload = {"kind": args.kind, "file": args.file, "rows": int(loaded), "deployment_changes": links,
               "warnings": list(loaded.warnings)}  # fmt: skip
    emit(args, payload, f"loaded {counted(loaded, args.kind + ' row')} from {args.file}")
    for warning in loaded.warnings:
        diagnostic(f"warning: {warning}")
    return EXIT_OK


def cmd_ingest_flags(args: argparse.Namespace) -> int:
    from releaserisk.ingest.flags import ingest_flags

    with open_db(args) as store:
        result = ingest_flags(store, args.file, args.log_format, settings=settings_of(args))
    emit(args, {"file": args.file, "format": args.log_format, **result.to_dict()}, result.summary())
    if result.unmapped:
        hint("give services a flag_prefix column in services.csv, or set flag_service_pattern")
    return EXIT_OK


def iso_time(text: str):
    """An argparse type: an ISO 8601 date or time, UTC unless it names a zone (``inputs.parse_instant``)."""
    from releaserisk.errors import InputError
    from releaserisk.inputs import parse_instant

    try:
        return parse_instant(text, "--since").to_pydatetime()
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_ingest_github(args: argparse.Namespace) -> int:
    import os

    from releaserisk.ingest.github import ingest_github

    token = os.environ.get(args.token_env)  # read from the environment only: never a flag, never printed
    since = args.since

    def notify(message: str) -> None:
        diagnostic(message)

    with open_db(args) as store:
        result = ingest_github(
            store,
            args.repository,
            name=args.name,
            token=token,
            since=since,
            environments=args.environment,
            incident_labels=args.incident_label or ["incident"],
            bug_labels=settings_of(args).bug_labels,
            deploy_workflows=args.deploy_workflow or [],
            release_environment=args.release_environment,
            base_url=args.base_url,
            wait=not args.no_wait,
            notify=notify,
        )
        hint_unknown_repositories(store)
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def cmd_ingest_tags(args: argparse.Namespace) -> int:
    from releaserisk.ingest.git import ingest_git_tags

    with open_db(args) as store:
        result = ingest_git_tags(
            store,
            args.path,
            pattern=args.pattern,
            service=args.service,
            environment=args.environment,
            name=args.name,
            include_prereleases=args.include_prereleases,
        )
    emit(args, result.to_dict(), result.summary(with_warning=False))
    if result.warning():
        diagnostic(f"warning: {result.warning()}")
    if not result.deployments:
        wanted = f"'{args.pattern}'" if args.pattern else "a final release version (v1.2.3 or 1.2)"
        hint(f"no tag in {args.path} names {wanted}; choose the release tags with --pattern GLOB")
    return EXIT_OK


def cmd_ingest_gitlab(args: argparse.Namespace) -> int:
    from releaserisk.ingest.gitlab import ingest_gitlab

    with open_db(args) as store:
        result = ingest_gitlab(
            store,
            args.project,
            name=args.name,
            base_url=args.base_url,
            since=args.since,
            environments=args.environment,
            incident_labels=args.incident_label or ["incident"],
            bug_labels=settings_of(args).bug_labels,
            release_environment=args.release_environment,
            wait=not args.no_wait,
        )  # the token comes from $GITLAB_TOKEN inside: never a flag, never printed
        hint_unknown_repositories(store)
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def cmd_ingest_pagerduty(args: argparse.Namespace) -> int:
    from releaserisk.ingest.pagerduty import ingest_pagerduty
    from releaserisk.ingest.sources import read_service_map

    service_map = read_service_map(args.service_map) if args.service_map else None
    with open_db(args) as store:
        result = ingest_pagerduty(
            store, since=args.since, service_map=service_map, base_url=args.base_url, wait=not args.no_wait
        )
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def cmd_ingest_jira(args: argparse.Namespace) -> int:
    from releaserisk.ingest.jira import ingest_jira
    from releaserisk.ingest.sources import read_service_map

    service_map = read_service_map(args.service_map) if args.service_map else None
    with open_db(args) as store:
        result = ingest_jira(
            store,
            args.server,
            args.jql,
            as_=args.as_,
            since=args.since,
            repos=args.repo,
            severity_field=args.severity_field,
            service_field=args.service_field,
            service_map=service_map,
            bug_labels=settings_of(args).bug_labels,
            wait=not args.no_wait,
        )
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def cmd_ingest_parquet(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        loaded = store.import_parquet(args.directory)
    text = f"loaded {counted(len(loaded), 'table')} from {args.directory}\n{table_listing(loaded)}"
    emit(args, {"directory": args.directory, "tables": loaded}, text)
    return EXIT_OK


def cmd_ingest_metrics(args: argparse.Namespace) -> int:
    from releaserisk.canary.data import load_samples, store_samples

    samples = load_samples(args.file, arm=args.arm, arm_label=args.arm_label, assume_tz=args.assume_tz)
    with open_db(args) as store:
        loaded = store_samples(store, samples, args.analysis)
    analyses = [args.analysis] if args.analysis else sorted(samples["analysis_id"].astype(str).unique())
    what = analyses[0] if len(analyses) == 1 else f"{len(analyses)} analyses"
    emit(args, {"analysis_ids": analyses, "samples": loaded}, f"stored {loaded:,} samples of {what}")
    return EXIT_OK


def register(sub) -> None:
    """Add ``ingest`` and its sources to the top-level sub-parsers."""
    ingest = sub.add_parser("ingest", help="load data into the store").add_subparsers(
        dest="source", metavar="SOURCE", required=True
    )
    p = ingest.add_parser(
        "git",
        help="commits, file changes and change metrics from a git repository",
        description="One streaming pass over git log; incremental on re-runs.",
    )
    p.add_argument("path", help="work tree or bare repository")
    p.add_argument("--name", help="repository name in the store (default: directory name)")
    p.add_argument(
        "--rev",
        action="append",
        help="revision to ingest the history of (default: HEAD); repeat for several branches (e.g. main and a "
        "maintenance branch releases are tagged on): their union is ingested once",
    )
    p.add_argument(
        "--workers",
        type=int,
        choices=(1, 2),
        help="git processes for a first ingest of 20,000+ commits (default: 2 on 3 or more cores, else 1)",
    )
    add_format(p)
    p.set_defaults(handler=cmd_ingest_git)

    p = ingest.add_parser(
        "org",
        help="every repository of an organisation manifest, in parallel on Dask workers, into a Parquet lake",
        description="Per repository: git history with change metrics, SZZ labels and (when configured) release "
        "tags, each incremental; a repository unchanged since its last success is skipped and a failed one is "
        "retried on the next run. The lake is --lake (before the command) or the manifest's lake key.",
    )
    p.add_argument("manifest", help="organisation manifest (TOML): [[repos]] entries and/or a [scan] folder")
    p.add_argument(
        "--workers",
        type=positive_int,
        help="worker processes of a local Dask cluster (default: the machine's cores; 1: no cluster)",
    )
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument(
        "--compact",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="merge the lake's shards after the run (default: when a table has 64 per-repository shards or more)",
    )
    add_format(p)
    p.set_defaults(handler=cmd_ingest_org)

    from releaserisk.ingest.schemas import SCHEMAS

    for kind, (_, columns) in SCHEMAS.items():
        if kind == "flags":  # vendor audit logs too: its own parser below
            continue
        required = ", ".join(c.name for c in columns if c.required)
        optional = ", ".join(c.name for c in columns if not c.required)
        p = ingest.add_parser(
            kind,
            help=f"{kind} from CSV, JSON or Parquet",
            description=f"Required columns: {required}. Optional: {optional or 'none'}. "
            "Timestamps need a zone (Z or +hh:mm) unless --assume-tz is given. Re-loading a file changes nothing.",
        )
        p.add_argument("file")
        p.add_argument("--assume-tz", help="IANA zone for timestamps without one, e.g. Europe/Berlin")
        add_format(p)
        p.set_defaults(handler=cmd_ingest_file, kind=kind)

    p = ingest.add_parser(
        "github",
        help="pull requests, reviews, deployments, workflow runs, incidents and bug issues from GitHub",
        description="Token from $GITHUB_TOKEN (or --token-env NAME); it is never stored or printed. Each resource "
        "resumes from its watermark, so a re-run continues where a stopped run ended.",
    )
    p.add_argument("repository", metavar="OWNER/REPO")
    p.add_argument("--name", help="repository name in the store, as 'ingest git' got it (default: REPO)")
    p.add_argument("--since", type=iso_time, help="ignore anything older (ISO date); default: from the watermarks")
    p.add_argument("--environment", action="append", help="deployment environment to read (repeatable; default all)")
    p.add_argument("--incident-label", action="append", help="issue label marking incidents (default: incident)")
    p.add_argument("--deploy-workflow", action="append", help="Actions workflow that deploys (name or file)")
    p.add_argument("--release-environment", help="record published releases as deployments to this environment")
    p.add_argument("--base-url", help="GitHub Enterprise API URL")
    p.add_argument("--token-env", default="GITHUB_TOKEN", help="environment variable holding the token")
    p.add_argument("--no-wait", action="store_true", help="stop (resumably) instead of waiting out the rate limit")
    add_format(p)
    p.set_defaults(handler=cmd_ingest_github)

    p = ingest.add_parser(
        "gitlab",
        help="merge requests, reviews, deployments, releases, incidents and bug issues from GitLab",
        description="Token from $GITLAB_TOKEN (read_api scope); it is never stored or printed. Each resource resumes "
        "from its watermark; all are loaded in one transaction. Cost: 1 call per 100 listed items plus 2 per merge "
        "request.",
    )
    p.add_argument("project", metavar="GROUP/PROJECT")
    p.add_argument("--base-url", default="https://gitlab.com", help="GitLab server (default: https://gitlab.com)")
    p.add_argument("--name", help="repository name in the store, as 'ingest git' got it (default: PROJECT)")
    p.add_argument("--since", type=iso_time, help="ignore anything older (ISO date); default: from the watermarks")
    p.add_argument("--environment", action="append", help="deployment environment to read (repeatable; default all)")
    p.add_argument("--incident-label", action="append", help="label marking incidents besides the incident type")
    p.add_argument("--release-environment", help="record releases as deployments to this environment")
    p.add_argument("--no-wait", action="store_true", help="stop (resumably) instead of waiting out the rate limit")
    add_format(p)
    p.set_defaults(handler=cmd_ingest_gitlab)

    p = ingest.add_parser(
        "pagerduty",
        help="incidents from PagerDuty",
        description="API key from $PAGERDUTY_TOKEN; it is never stored or printed. The first run reads every "
        "incident, later runs those opened since the watermark less 14 days. Cost: 1 call per 100 incidents.",
    )
    p.add_argument("--since", type=iso_time, help="read incidents opened since (ISO date); default: the watermark")
    p.add_argument("--service-map", help="JSON object or CSV (pagerduty_service,service): PagerDuty → our services")
    p.add_argument("--base-url", help="API URL (EU accounts: https://api.eu.pagerduty.com)")
    p.add_argument("--no-wait", action="store_true", help="stop (resumably) instead of waiting out the rate limit")
    add_format(p)
    p.set_defaults(handler=cmd_ingest_pagerduty)

    p = ingest.add_parser(
        "jira",
        help="bug issues or incidents from a Jira query",
        description="Credentials from $JIRA_TOKEN (and $JIRA_EMAIL for Jira Cloud); never stored or printed. "
        "Re-runs read what was updated since the watermark. Cost: 1 call per 100 issues plus 2 per run.",
    )
    p.add_argument("--server", required=True, help="the Jira site, e.g. https://acme.atlassian.net")
    p.add_argument("--jql", required=True, help="the query, e.g. 'project = SHOP AND issuetype = Bug'")
    p.add_argument("--as", dest="as_", choices=JIRA_KINDS, default="issues", help="load them as (default: issues)")
    p.add_argument("--since", type=iso_time, help="read issues updated since (ISO date); default: the watermark")
    p.add_argument("--repo", action="append", help="repository whose commits cite the issues (default: all)")
    p.add_argument("--severity-field", help="incidents: field id holding the severity (default: the priority)")
    p.add_argument("--service-field", help="incidents: field id holding the service (default: the first component)")
    p.add_argument("--service-map", help="JSON object or CSV (component,service) mapping their names to services")
    p.add_argument("--no-wait", action="store_true", help="stop at a rate limit instead of retrying")
    add_format(p)
    p.set_defaults(handler=cmd_ingest_jira)

    p = ingest.add_parser(
        "git-tags",
        help="release tags as successful deployments (libraries that release by tag)",
        description="By default only final releases (PEP 440 / SemVer without pre-release or dev parts; not branch "
        "names such as 1.x or 8.0.x). The summary says which tags were skipped and why, and warns about tags whose "
        "commit is not in the ingested history.",
    )
    p.add_argument("path")
    p.add_argument("--pattern", help="tag glob; takes what it matches except pre-releases and branch-like names")
    p.add_argument("--include-prereleases", action="store_true", help="take pre-releases and dev releases too")
    p.add_argument("--service", required=True)
    p.add_argument("--environment", default="production")
    p.add_argument("--name", help="repository name in the store")
    add_format(p)
    p.set_defaults(handler=cmd_ingest_tags)

    p = ingest.add_parser("parquet", help="a snapshot written by 'releaserisk export' (upserted, one transaction)")
    p.add_argument("directory")
    add_format(p)
    p.set_defaults(handler=cmd_ingest_parquet)

    _, flag_columns = SCHEMAS["flags"]
    p = ingest.add_parser(
        "flags",
        help="feature-flag changes: LaunchDarkly, Unleash or Flagsmith audit logs, or the generic flag CSV",
        description="Vendor dumps as their APIs return them (one page, a list of pages, or JSON lines): LaunchDarkly "
        "/api/v2/auditlog, Unleash /api/admin/events, Flagsmith /api/v1/audit/. The generic file (CSV, JSON or "
        f"Parquet) has columns {', '.join(c.name for c in flag_columns)}. Flags map to services by the flag log's "
        "service column, services.flag_prefix, or the flag_service_pattern setting. Nothing is loaded from a file "
        "with an error; re-loading changes nothing.",
    )
    p.add_argument("file")
    p.add_argument("--format", dest="log_format", choices=FLAG_FORMATS, default="csv",
                   help="the file's format (default csv)")  # fmt: skip
    p.add_argument("--output", dest="format", choices=("text", "json"), default="text", help="output format")
    p.set_defaults(handler=cmd_ingest_flags)

    p = ingest.add_parser("metrics", help="canary metric samples (CSV, Parquet, JSON, Prometheus JSON)")
    p.add_argument("file")
    p.add_argument("--analysis", help="analysis id of the samples (a file with an analysis_id column: the one to keep)")
    p.add_argument("--arm", choices=CANARY_ARMS, help="arm of every row (one file per arm)")
    p.add_argument("--arm-label", default="arm", help="Prometheus label naming the arm (default: arm)")
    p.add_argument("--assume-tz", help="IANA zone for sample timestamps without one, e.g. Europe/Berlin")
    add_format(p)
    p.set_defaults(handler=cmd_ingest_metrics)
