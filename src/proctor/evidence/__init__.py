"""Evidence: an audit evidence bundle exported from the store and verified offline.

``proctor.evidence.export`` writes the zip, ``proctor.evidence.verify`` checks it
with no database. ``proctor.evidence.versions`` keeps each policy bundle
version's files from its first use (the runtime calls it), so an export can
show the policies in force at any time. Nothing is imported here, so the
runtime can reach ``versions`` without the rest.
"""
