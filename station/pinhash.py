"""Technician PINs as salted PBKDF2 hashes: config files never hold a PIN in clear."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_pin", "is_pin_hash", "verify_pin"]

_SCHEME = "pbkdf2_sha256"
# one hash costs a fraction of a second: cheap for one command, slow for guessing offline
_ITERATIONS = 200_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_pin(pin: str, iterations: int = _ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>`` for ``pin`` (random 16-byte salt)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations)
    return f"{_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def _parts(value: str) -> tuple[int, bytes, bytes] | None:
    try:
        scheme, iterations, salt, digest = value.split("$")
        if scheme != _SCHEME or not 1_000 <= int(iterations) <= 10_000_000:
            return None
        return int(iterations), _unb64(salt), _unb64(digest)
    except ValueError:  # wrong field count, not an integer, not base64 (binascii.Error)
        return None


def is_pin_hash(value: str) -> bool:
    """True when ``value`` looks like what :func:`hash_pin` makes."""
    parts = _parts(value)
    return parts is not None and len(parts[1]) >= 8 and len(parts[2]) == 32


def verify_pin(pin: str, stored: str) -> bool:
    """True when ``pin`` matches the ``stored`` hash; constant-time comparison."""
    parts = _parts(stored)
    if parts is None:
        return False
    iterations, salt, digest = parts
    candidate = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(candidate, digest)
