-- 001: every table of DESIGN.md section 3.
-- Keys are enforced by Store.upsert (delete-matching-then-insert in one transaction),
-- not by PRIMARY KEY constraints: DuckDB's ART indexes slow bulk loads several-fold and
-- reject delete+reinsert of the same key inside one transaction.  Store.TABLE_KEYS lists
-- the key of each table.

CREATE TABLE repos (
    repo VARCHAR NOT NULL, path VARCHAR, remote_url VARCHAR, default_branch VARCHAR,
    head_sha VARCHAR, ingested_at TIMESTAMPTZ
);

CREATE TABLE commits (
    repo VARCHAR NOT NULL, sha VARCHAR NOT NULL, parents VARCHAR[], author VARCHAR,
    author_email VARCHAR, authored_at TIMESTAMPTZ, committed_at TIMESTAMPTZ,
    message VARCHAR, is_merge BOOLEAN, seq BIGINT  -- seq: processing order within the repo
);

CREATE TABLE file_changes (
    repo VARCHAR NOT NULL, sha VARCHAR NOT NULL, path VARCHAR NOT NULL, old_path VARCHAR,
    status VARCHAR, added INTEGER, deleted INTEGER  -- NULL counts: binary file
);

CREATE TABLE change_features (
    repo VARCHAR NOT NULL, sha VARCHAR NOT NULL,
    ns INTEGER, nd INTEGER, nf INTEGER, entropy DOUBLE, entropy_norm DOUBLE,
    la INTEGER, ld INTEGER, lt INTEGER, fix BOOLEAN, ndev INTEGER, age DOUBLE,
    nuc INTEGER, exp INTEGER, rexp DOUBLE, sexp INTEGER, feature_version INTEGER
);

CREATE TABLE services (
    service VARCHAR NOT NULL, repo VARCHAR, path_prefix VARCHAR, team VARCHAR
);

CREATE TABLE pull_requests (
    repo VARCHAR NOT NULL, number INTEGER NOT NULL, title VARCHAR, author VARCHAR,
    created_at TIMESTAMPTZ, merged_at TIMESTAMPTZ, closed_at TIMESTAMPTZ, base_ref VARCHAR,
    head_sha VARCHAR, merge_commit_sha VARCHAR, additions INTEGER, deletions INTEGER,
    changed_files INTEGER, labels VARCHAR[]
);

CREATE TABLE pr_commits (
    repo VARCHAR NOT NULL, number INTEGER NOT NULL, sha VARCHAR NOT NULL, authored_at TIMESTAMPTZ
);

CREATE TABLE pr_reviews (
    repo VARCHAR NOT NULL, number INTEGER NOT NULL, reviewer VARCHAR NOT NULL,
    submitted_at TIMESTAMPTZ NOT NULL, state VARCHAR
);

CREATE TABLE deployments (
    deployment_id VARCHAR NOT NULL, service VARCHAR, repo VARCHAR, environment VARCHAR,
    sha VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, status VARCHAR,
    kind VARCHAR, reverts_deployment_id VARCHAR, source VARCHAR
);

CREATE TABLE deployment_changes (
    deployment_id VARCHAR NOT NULL, repo VARCHAR NOT NULL, sha VARCHAR NOT NULL,
    derived BOOLEAN DEFAULT true,  -- false: given explicitly by a deployment-changes file
    committed_at TIMESTAMPTZ       -- copied from commits when linked: lead time needs no 10M-row join
);

CREATE TABLE incidents (
    incident_id VARCHAR NOT NULL, service VARCHAR, title VARCHAR, severity VARCHAR,
    opened_at TIMESTAMPTZ, resolved_at TIMESTAMPTZ, cause_deployment_id VARCHAR,
    cause_sha VARCHAR, source VARCHAR
);

CREATE TABLE labels (
    repo VARCHAR NOT NULL, sha VARCHAR NOT NULL, method VARCHAR NOT NULL, buggy BOOLEAN,
    fix_sha VARCHAR, labelled_at TIMESTAMPTZ
);

CREATE TABLE metric_samples (
    analysis_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, arm VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL, sample_index INTEGER NOT NULL, value DOUBLE
);

CREATE TABLE risk_scores (
    repo VARCHAR NOT NULL, sha VARCHAR NOT NULL, model_id VARCHAR NOT NULL,
    probability DOUBLE, band VARCHAR, explanation JSON, scored_at TIMESTAMPTZ
);

CREATE TABLE models (
    model_id VARCHAR NOT NULL, path VARCHAR, level VARCHAR, created_at TIMESTAMPTZ,
    train_start TIMESTAMPTZ, train_end TIMESTAMPTZ, features VARCHAR[], metrics JSON,
    versions JSON
);

CREATE TABLE ingest_runs (
    run_id VARCHAR NOT NULL, source VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    status VARCHAR, counts JSON, watermark VARCHAR
);

-- Resumable state of the git change-metric pass, so an incremental ingest continues
-- exactly where the previous one stopped (see releaserisk.ingest.git).
CREATE TABLE git_file_state (
    repo VARCHAR NOT NULL, path VARCHAR NOT NULL, last_time DOUBLE, commits BIGINT[],
    authors VARCHAR[]
);
CREATE TABLE git_author_state (
    repo VARCHAR NOT NULL, author VARCHAR NOT NULL, times DOUBLE[]
);
CREATE TABLE git_author_subsystem (
    repo VARCHAR NOT NULL, author VARCHAR NOT NULL, subsystem VARCHAR NOT NULL, n BIGINT
);
CREATE TABLE git_blob_lines (
    repo VARCHAR NOT NULL, blob VARCHAR NOT NULL, lines BIGINT  -- NULL: binary blob
);
