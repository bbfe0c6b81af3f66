-- 002: issues from a tracker (GitHub issues or any tracker's export). Commits that cite a
-- bug issue ("#123", "GH-123", "PROJ-123") are bug fixes for SZZ, and the issue's opening
-- date bounds the commits a fix may blame. Key (Store.TABLE_KEYS): repo, issue.
CREATE TABLE issues (
    repo VARCHAR NOT NULL,
    issue VARCHAR NOT NULL,  -- as commit messages cite it: "123" (GitHub) or "PROJ-123" (Jira)
    title VARCHAR, labels VARCHAR[], opened_at TIMESTAMPTZ, closed_at TIMESTAMPTZ, source VARCHAR
);
