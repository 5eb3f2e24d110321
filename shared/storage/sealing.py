"""Secrets sealed at rest with AES-GCM, the one place that holds the
cipher: the returnee's personal data in the referrals service under
DATA_ENCRYPTION_KEYS, partners' webhook secrets in the notifications
service under WEBHOOK_SECRET_KEYS (each service holds only its own keys).

A setting is comma-separated base64 keys of 32 bytes: the first seals,
every one opens, so that a key can be rotated (`python -m
services.referrals.rekey` seals old rows again under the first). A sealed
value is bytes: the key's id (the first 8 bytes of the SHA-256 of the key),
a random 12-byte nonce, then the ciphertext with its tag. None stays None:
a NULL column means "nothing" whether or not it was ever sealed.

Request digests (idempotency) cannot be sealed, only compared: they are an
HMAC-SHA256, under a key derived from an encryption key, of the body's
SHA-256, with that key's id in front, so that a guessed body cannot be
checked against a dump, and a digest made before a rotation still matches.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nameko.extensions import DependencyProvider

SETTING = "DATA_ENCRYPTION_KEYS"  # the returnee's personal data (the referrals service)
WEBHOOK_SETTING = "WEBHOOK_SECRET_KEYS"  # partners' webhook secrets (the notifications service)
PURPOSES = {
    SETTING: "the keys that encrypt returnees' personal data",
    WEBHOOK_SETTING: "the keys that encrypt partners' webhook secrets",
}
KEY_BYTES = 32
ID_BYTES = 8
NONCE_BYTES = 12
HOW_TO_MAKE_ONE = "make one with `head -c 32 /dev/urandom | base64`"


class KeysNotValid(ValueError):
    """DATA_ENCRYPTION_KEYS is missing or not keys: said in one line."""


class CannotOpen(Exception):
    """A sealed value under no key of the setting, or altered."""


def key_id(key):
    return hashlib.sha256(key).digest()[:ID_BYTES]


def parse_keys(value, setting=SETTING):
    """The keys `value` (the value of `setting`) names, first first."""
    words = [word.strip() for word in (value or "").split(",") if word.strip()]
    if not words:
        raise KeysNotValid(
            f"{setting} is not set; it holds {PURPOSES[setting]} "
            f"(comma-separated base64 keys of {KEY_BYTES} bytes, the first encrypts; "
            f"{HOW_TO_MAKE_ONE})."
        )
    keys = []
    for place, word in enumerate(words, 1):
        try:
            key = base64.b64decode(word, validate=True)
        except binascii.Error:
            key = None
        if key is None or len(key) != KEY_BYTES:
            raise KeysNotValid(
                f"{setting}: key {place} is not {KEY_BYTES} bytes in base64 ({HOW_TO_MAKE_ONE})."
            )
        keys.append(key)
    if len({key_id(key) for key in keys}) != len(keys):
        raise KeysNotValid(f"{setting} names the same key twice.")
    return keys


def new_key():
    """A fresh key, as a key setting writes it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class Sealer:
    def __init__(self, keys, setting=SETTING):
        self.setting = setting
        self.ciphers = {key_id(key): AESGCM(key) for key in keys}
        self.digest_keys = {key_id(key): _derived(key, b"referrals request digest") for key in keys}
        self.current_id = key_id(keys[0])

    @classmethod
    def from_setting(cls, value, setting=SETTING):
        return cls(parse_keys(value, setting), setting)

    def seal(self, plain):
        """bytes sealed under the first key (None stays None)."""
        if plain is None:
            return None
        nonce = os.urandom(NONCE_BYTES)
        return self.current_id + nonce + self.ciphers[self.current_id].encrypt(nonce, plain, None)

    def open(self, sealed):
        if sealed is None:
            return None
        sealed = bytes(sealed)
        cipher = self.ciphers.get(sealed[:ID_BYTES])
        if cipher is None:
            raise CannotOpen(
                f"sealed under key {sealed[:ID_BYTES].hex()}, which {self.setting} does not hold"
            )
        nonce, body = sealed[ID_BYTES : ID_BYTES + NONCE_BYTES], sealed[ID_BYTES + NONCE_BYTES :]
        try:
            return cipher.decrypt(nonce, body, None)
        except InvalidTag:
            raise CannotOpen("a sealed value does not open under its key: altered") from None

    def is_current(self, sealed):
        """Whether `sealed` (or a digest) is under the first key; None is."""
        return sealed is None or bytes(sealed[:ID_BYTES]) == self.current_id

    def reseal(self, sealed):
        """`sealed` under the first key."""
        return self.seal(self.open(sealed))

    def seal_text(self, text):
        return None if text is None else self.seal(text.encode())

    def open_text(self, sealed):
        return None if sealed is None else self.open(sealed).decode()

    def seal_json(self, value):
        return None if value is None else self.seal(json.dumps(value, ensure_ascii=False).encode())

    def open_json(self, sealed):
        return None if sealed is None else json.loads(self.open(sealed))

    def digest(self, text, under=None):
        """HMAC of `text` under the first key's digest key (or `under`, a key id)."""
        under = under or self.current_id
        return under + hmac.new(self.digest_keys[under], text.encode(), hashlib.sha256).digest()

    def digest_matches(self, stored, text):
        """Whether `stored` is the digest of `text` under any key it names;
        False when its key is no longer set."""
        stored = bytes(stored)
        if stored[:ID_BYTES] not in self.digest_keys:
            return False
        return hmac.compare_digest(stored, self.digest(text, stored[:ID_BYTES]))


def _derived(key, purpose):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


class Sealing(DependencyProvider):
    """Gives each worker the service's `Sealer` under the keys of `setting`;
    a container without valid keys does not start."""

    def __init__(self, setting=SETTING):
        self.setting = setting

    def setup(self):
        self.sealer = Sealer.from_setting(self.container.config.get(self.setting), self.setting)

    def get_dependency(self, worker_ctx):
        return self.sealer
