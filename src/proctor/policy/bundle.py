"""A policy bundle: a versioned folder of Cedar policies and its settings.

A bundle's version is its human label and the SHA-256 digest of its files, so
every decision names exactly the policies that made it::

    bundle = PolicyBundle.load("policies/refunds")
    decision = bundle.decide(request)
    decision.bundle_version   # "refunds-2024-06@3f2a9c0b1d4e"
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cedarpy

from proctor.errors import PolicyError
from proctor.policy._engine import Engine
from proctor.policy.check import read_bundle
from proctor.policy.decision import Decision, PolicyRequest
from proctor.policy.policies import PolicyInfo
from proctor.policy.settings import BundleSettings


@dataclass(frozen=True)
class BundleVersion:
    """Which bundle decided: its label and the digest of its files."""

    label: str
    """``label`` from ``proctor.yaml``."""
    digest: str
    """SHA-256 (hex) over the bundle's files; see ``bundle_digest``."""

    def __str__(self) -> str:
        return f"{self.label}@{self.digest[:12]}"


def bundle_digest(files: Mapping[str, bytes]) -> str:
    """SHA-256 over ``files`` sorted by relative path.

    For each file the hash takes ``<relative path>\\0<size in bytes>\\0`` (UTF-8)
    then the content, so no two different bundles hash alike by shifting bytes
    between a name and a content. Anyone can recompute it from an exported bundle.
    """
    digest = hashlib.sha256()
    for relative in sorted(files):
        content = files[relative]
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


class PolicyBundle:
    """A loaded, checked policy bundle that decides requests.

    Load with ``PolicyBundle.load(path)``. A bundle is immutable and safe to
    share between threads and tasks.
    """

    path: Path
    """The folder it was loaded from."""
    version: BundleVersion
    settings: BundleSettings
    """The parsed ``proctor.yaml``."""
    files: Mapping[str, bytes]
    """The bundle's files (policies, schema, ``proctor.yaml``) by relative path."""
    policies: tuple[PolicyInfo, ...]
    """Its policies, in file order then line order."""

    def __init__(
        self,
        *,
        path: Path,
        settings: BundleSettings,
        files: Mapping[str, bytes],
        engine: Engine,
        version: BundleVersion,
    ) -> None:
        self.path = path
        self.settings = settings
        self.files = MappingProxyType(dict(files))
        self.version = version
        self.policies = tuple(engine.policies.values())
        self._engine = engine

    @classmethod
    def load(cls, path: Path | str) -> PolicyBundle:
        """Load the bundle folder at ``path``.

        Raises ``PolicyError`` listing every problem (file, line, what to do) if
        the bundle does not check.
        """
        source = read_bundle(path)
        if source.issues or source.settings is None:
            raise PolicyError(str(source.path), source.issues)
        version = BundleVersion(label=source.settings.label, digest=bundle_digest(source.files))
        engine = Engine(source.policies, str(version))
        return cls(
            path=source.path,
            settings=source.settings,
            files=source.files,
            engine=engine,
            version=version,
        )

    def decide(self, request: PolicyRequest) -> Decision:
        """Decide one proposed call. Never raises for the request's content: a
        value Cedar cannot represent, or a policy that fails to evaluate, is a deny
        with ``errors`` filled."""
        return self._engine.decide(request)

    @property
    def policy_set(self) -> cedarpy.PolicySet:
        """The parsed Cedar policy set; each policy's Cedar id is its proctor id."""
        return self._engine.policy_set

    def policy(self, policy_id: str) -> PolicyInfo:
        """The policy with ``policy_id``; ``KeyError`` if the bundle has none."""
        return self._engine.policies[policy_id]

    def __repr__(self) -> str:
        return f"PolicyBundle({str(self.path)!r}, version={str(self.version)!r})"
