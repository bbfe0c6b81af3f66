"""Sources → store. Each ingest runs in one transaction and is idempotent."""
