-- 003: GitHub pull requests, their commits and reviews were stored under OWNER/REPO, while
-- GitHub deployments and issues, and `ingest git`, name the repository REPO: no pull
-- request could reach a deployment (no deploy phase, no DevLake cycle time) or mark its
-- commits as fixes. Rename them to REPO where that is the name the rest of the store uses
-- and OWNER/REPO is not itself a repository's name; leave a row whose REPO twin (same
-- number) already exists.
CREATE TEMP TABLE renamed_repos AS
SELECT DISTINCT repo AS full_name, split_part(repo, '/', 2) AS short_name FROM pull_requests
WHERE repo LIKE '%/%' AND repo NOT IN (SELECT repo FROM repos)
  AND split_part(repo, '/', 2) IN (
      SELECT repo FROM repos UNION SELECT repo FROM deployments WHERE repo IS NOT NULL
      UNION SELECT repo FROM issues);

UPDATE pull_requests t SET repo = r.short_name FROM renamed_repos r
WHERE t.repo = r.full_name
  AND NOT EXISTS (SELECT 1 FROM pull_requests o WHERE o.repo = r.short_name AND o.number = t.number);

UPDATE pr_commits t SET repo = r.short_name FROM renamed_repos r
WHERE t.repo = r.full_name
  AND NOT EXISTS (SELECT 1 FROM pr_commits o WHERE o.repo = r.short_name AND o.number = t.number);

UPDATE pr_reviews t SET repo = r.short_name FROM renamed_repos r
WHERE t.repo = r.full_name
  AND NOT EXISTS (SELECT 1 FROM pr_reviews o WHERE o.repo = r.short_name AND o.number = t.number);

DROP TABLE renamed_repos;
