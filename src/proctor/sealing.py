"""Keeping arguments a paused or in-flight call needs, without storing them readable.

Sensitive fields are masked in everything proctor stores. A call that waits
for approval, or whose outcome must be reconciled after a crash, still needs
its real arguments later, maybe in another process: those are sealed
(authenticated encryption) with a key derived from the audit key, and the seal
is dropped once the step has its outcome. Replay compares calls by a keyed
hash, so equal arguments match without being readable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from proctor.errors import ConfigError
from proctor.jsonvalue import canonical_json


def secret_of(key: Ed25519PrivateKey) -> bytes:
    """The audit key's raw bytes: the root every derived key (sealing, hashing) comes from."""
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


class Sealer:
    def __init__(self, secret: bytes) -> None:
        material = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=None, info=b"proctor step sealing v1"
        ).derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(material[:32]))
        self._mac_key = material[32:]

    @classmethod
    def from_signing_key(cls, key: Ed25519PrivateKey) -> Sealer:
        return cls(secret_of(key))

    def mac(self, value: Any) -> str:
        """A keyed hash of a value's canonical JSON."""
        return hmac.new(self._mac_key, canonical_json(value).encode(), hashlib.sha256).hexdigest()

    def seal(self, value: Any) -> str:
        return self._fernet.encrypt(canonical_json(value).encode()).decode()

    def open(self, token: str) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigError(
                "cannot open sealed step arguments: the audit key changed since they were "
                "sealed. Restore the previous PROCTOR_AUDIT_KEY_FILE to resume this run."
            ) from exc
