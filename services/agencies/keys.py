"""API keys: random secrets shown once, kept only as a digest and a prefix."""

import secrets

KEY_PREFIX = "rnk_"
VISIBLE_CHARS = 12  # "rnk_" and 8 more: enough for support to tell keys apart


def new_key():
    """A 256-bit random key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def visible_prefix(key):
    return key[:VISIBLE_CHARS]
