"""Field-level encryption of sensitive traits (THREADLINE_ENCRYPTED_TRAITS), with rotatable keys.

A value of an encrypted trait is stored as `enc:v1:<key id>:<base64url>`: the JSON of the value sealed
with AES-SIV (RFC 5297) under the newest key of THREADLINE_ENCRYPTION_KEYS, with the trait's key as
associated data (a value copied under another trait does not open). Ingestion seals values before
anything stores them (ingest/pipeline.py), so profiles, trait history and events hold ciphertext only;
reads open them for viewers with the pii permission (privacy/masking.py).

AES-SIV is deterministic on purpose: the same value under the same key and trait seals to the same
text, so the golden record's counts of identical values, "the value equal to the shown one is not
history" and exact duplicate matching keep working on ciphertext. The price is that equal values are
visibly equal in the database (docs/privacy.md#protection says more).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from threadline.config import Settings

PREFIX = "enc:v1:"


class CannotDecrypt(ValueError):
    """A sealed value whose key is no longer configured, or that was tampered with."""


@dataclass(frozen=True, slots=True)
class _Key:
    id: str
    aead: AESSIV


def _derive(secret: str) -> _Key:
    # HKDF turns any long random secret into the 512-bit key AES-256-SIV needs; the id names the key in
    # every value it sealed, so rotation knows what is left to re-encrypt without trying keys.
    material = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=b"threadline trait encryption v1"
    ).derive(secret.encode())
    key_id = hashlib.sha256(b"threadline key id" + material).hexdigest()[:8]
    return _Key(key_id, AESSIV(material))


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def key_id_of(value: str) -> str:
    return value[len(PREFIX) :].partition(":")[0]


class TraitCipher:
    """Seals and opens the values of the encrypted traits; the first key is the one that seals."""

    def __init__(self, secrets: Iterable[str], traits: Iterable[str]) -> None:
        self.keys = tuple(_derive(secret) for secret in secrets)
        if not self.keys:
            raise ValueError("TraitCipher needs at least one key")
        self.by_id = {key.id: key for key in self.keys}
        self.traits = frozenset(traits)
        self.newest = self.keys[0]

    def seal(self, trait: str, value: Any) -> Any:
        """`value` sealed with the newest key if `trait` is encrypted (None, "" and sealed values stay)."""
        if trait not in self.traits or value is None or value == "" or is_sealed(value):
            return value
        return self._seal_with(self.newest, trait, value)

    def _seal_with(self, key: _Key, trait: str, value: Any) -> str:
        sealed = key.aead.encrypt(orjson.dumps(value), [trait.encode()])
        return f"{PREFIX}{key.id}:{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"

    def seal_traits(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a traits or properties object with its encrypted traits sealed (top-level keys)."""
        return {k: self.seal(k, v) for k, v in values.items()}

    def needs_sealing(self, values: Mapping[str, Any] | None) -> bool:
        return values is not None and not self.traits.isdisjoint(values)

    def open(self, trait: str, value: Any) -> Any:
        """The plaintext of a sealed value (anything else as it is); raises CannotDecrypt."""
        if not is_sealed(value):
            return value
        key_id, _, body = value[len(PREFIX) :].partition(":")
        key = self.by_id.get(key_id)
        if key is None:
            raise CannotDecrypt(f"no configured key has id {key_id}")
        try:
            plain = key.aead.decrypt(
                base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), [trait.encode()]
            )
        except (InvalidTag, ValueError):
            raise CannotDecrypt(
                "the value does not open with its key (tampered, or another trait's)"
            ) from None
        return orjson.loads(plain)

    def reseal(self, trait: str, value: Any) -> Any:
        """`value` under the newest key: an older key's value re-encrypted, a plaintext one of an
        encrypted trait encrypted (a trait added to the list after its data arrived)."""
        if is_sealed(value):
            if key_id_of(value) == self.newest.id:
                return value
            return self._seal_with(self.newest, trait, self.open(trait, value))
        return self.seal(trait, value)


def trait_cipher(settings: Settings) -> TraitCipher | None:
    """The cipher for these settings, or None when no trait is encrypted; built once per key set.
    Settings refuse encrypted traits without keys (config.py), so listed traits always have one."""
    if not settings.encrypted_traits:
        return None
    return _cipher(tuple(settings.encryption_keys), tuple(sorted(settings.encrypted_traits)))


@lru_cache(maxsize=8)
def _cipher(secrets: tuple[str, ...], traits: tuple[str, ...]) -> TraitCipher:
    return TraitCipher(secrets, traits)


def decryption_cipher(settings: Settings) -> TraitCipher | None:
    """A cipher for reads: it opens what the configured keys sealed, also the values of a trait since
    taken off THREADLINE_ENCRYPTED_TRAITS (they stay sealed in storage). None without keys."""
    if not settings.encryption_keys:
        return None
    return _cipher(tuple(settings.encryption_keys), tuple(sorted(settings.encrypted_traits)))
