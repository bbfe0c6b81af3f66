-- A deployment_changes row is derived only when the linker says so: rows inserted without
-- the column (a deploy tool's explicit list) are explicit. With DEFAULT true they were
-- deleted by the next re-derivation (an unrelated 'ingest deployments' lost them).
ALTER TABLE deployment_changes ALTER COLUMN derived SET DEFAULT false;
