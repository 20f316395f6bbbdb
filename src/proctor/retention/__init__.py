"""Retention: per-tenant time to live for audit payloads and finished runs.

Purging keeps the audit chain verifiable: an envelope and its payload hash
stay, the body goes, and the chain records the purge itself.
"""
