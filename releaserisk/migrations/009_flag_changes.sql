-- 009: feature-flag changes (LaunchDarkly, Unleash, Flagsmith audit logs or a generic CSV),
-- the services' flag-key prefixes, and an incident's explicit flag cause.
-- Key (Store.TABLE_KEYS): source, change_id. States are 'on', 'off' or a rollout share 'NN%'
-- (percentage of users served the flag's new variation); targeting changes keep free text.
CREATE TABLE flag_changes (
    source VARCHAR NOT NULL,     -- launchdarkly, unleash, flagsmith, or the CSV's source column
    change_id VARCHAR NOT NULL,  -- the vendor's audit-log entry / event id
    flag_key VARCHAR NOT NULL, environment VARCHAR, service VARCHAR,
    action VARCHAR,              -- created, on, off, rollout, targeting, archived
    from_state VARCHAR, to_state VARCHAR, actor VARCHAR,
    owner VARCHAR,               -- the flag's maintainer when the vendor records one
    changed_at TIMESTAMPTZ  -- DESIGN calls it "at", a reserved word in DuckDB
);
-- flag keys starting with this prefix belong to the service (services.csv column flag_prefix)
ALTER TABLE services ADD COLUMN flag_prefix VARCHAR;
-- an incident's root cause may be a flag change, named by the flag's key
ALTER TABLE incidents ADD COLUMN cause_flag_key VARCHAR;
