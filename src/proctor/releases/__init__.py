"""Releases of an agent: a hashed manifest, and the channels that carry it to traffic.

``proctor release create`` records a manifest; ``shadow`` mirrors live runs into a
candidate with side effects suppressed; ``canary`` sends a sticky share of new runs to
it; the SLO monitor rolls it back on a breach; ``promote`` makes it stable. See
docs/releases.md.
"""

from proctor.releases.manifest import Manifest, build_manifest
from proctor.releases.monitor import Monitor
from proctor.releases.registry import Channels, Release, Releases
from proctor.releases.serving import Placement, ReleaseServing

__all__ = [
    "Channels",
    "Manifest",
    "Monitor",
    "Placement",
    "Release",
    "ReleaseServing",
    "Releases",
    "build_manifest",
]
