"""Benchmarks that ``proctor bench`` runs."""
