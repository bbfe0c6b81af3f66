-- 004: what labelling decided and how well it went (issue 18).
-- label_fixes: every candidate bug fix of the last run, with the rule that found it and the
-- category that excluded it (NULL: counted), and its blame outcome once blamed.
-- label_quality: the label-quality summary of the latest run, as JSON (LabelQuality.to_dict()).
-- Keys (Store.TABLE_KEYS): label_fixes (repo, sha); label_quality (repo).
CREATE TABLE label_fixes (
    repo VARCHAR NOT NULL, sha VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,          -- keyword, issue or pull_request
    excluded VARCHAR,               -- typo, docs_only, dependencies, ...; NULL: a counted fix
    blamed_files INTEGER,           -- files blamed (NULL: not blamed)
    failed_blames INTEGER,          -- of those, blames git refused
    labelled_at TIMESTAMPTZ
);

CREATE TABLE label_quality (
    repo VARCHAR NOT NULL, labelled_at TIMESTAMPTZ NOT NULL,
    rules VARCHAR,                  -- fingerprint of the fix and path rules the labels were made with
    summary JSON
);
