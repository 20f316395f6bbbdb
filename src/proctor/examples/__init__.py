"""Example applications built on proctor, each with its system of record and policy bundle."""
