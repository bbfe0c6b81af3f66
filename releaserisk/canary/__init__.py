"""Canary analysis: a Kayenta-compatible fixed-horizon judge and anytime-valid monitoring."""
