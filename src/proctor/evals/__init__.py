"""Evals: a scenario bank, a runner, reports, and a release gate."""
