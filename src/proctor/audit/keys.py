"""The Ed25519 key that signs audit checkpoints."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from proctor.errors import ConfigError


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class VerifyKey:
    """A public key that checks checkpoint signatures."""

    public: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    def verify(self, signature_hex: str, message: bytes) -> bool:
        try:
            self.public.verify(bytes.fromhex(signature_hex), message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @classmethod
    def from_pem(cls, data: bytes, source: str) -> VerifyKey:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise ConfigError(f"{source} is not a PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"{source} is not an Ed25519 public key")
        return cls(key)


@dataclass(frozen=True)
class SigningKey:
    """The private key; ``generated`` says it was created just now, not configured."""

    private: Ed25519PrivateKey
    generated: bool = False

    @property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.private.public_key())

    @property
    def key_id(self) -> str:
        return self.verify_key.key_id

    def sign(self, message: bytes) -> str:
        return self.private.sign(message).hex()

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot read the audit signing key {path}: {exc}. It must be an unencrypted "
                "PEM Ed25519 private key (PROCTOR_AUDIT_KEY_FILE)."
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"the audit signing key {path} is not an Ed25519 key")
        return cls(key)

    @classmethod
    def load_or_generate(cls, path: Path) -> SigningKey:
        """Load ``path``; create it (mode 0600) when it does not exist yet."""
        if path.exists():
            return cls.load(path)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return cls(key, generated=True)
