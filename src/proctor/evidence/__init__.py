"""Evidence: an audit evidence bundle exported from the store and verified offline.

``proctor.evidence.export`` writes the zip, ``proctor.evidence.verify`` checks it
with no database. The policy bundle versions it shows are kept by
``proctor.policy.versions``, from each version's first use.
"""
