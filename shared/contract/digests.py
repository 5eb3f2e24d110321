"""How a secret is named wherever it is kept or sent: its SHA-256 digest.

API keys, sign-in links and coordinators' sessions cross the broker and
rest in the databases only as this digest, never in the clear (a queue's
messages rest on the broker's disks)."""

import hashlib


def digest(secret):
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
