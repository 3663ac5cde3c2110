"""Dashboard passwords: salted scrypt (stdlib), parameters kept in the hash string."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password"]

# OWASP's interactive-login parameters (n=2**17, r=8, p=1): 128 MiB and ~0.4 s on a small
# server, paid once per login. Above OpenSSL's default 32 MiB cap, so maxmem is raised.
_N, _R, _P = 2**17, 8, 1
_DKLEN = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _maxmem(n: int, r: int, p: int) -> int:
    return 128 * n * r * (p + 2) + 1024 * 1024


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """``scrypt$n$r$p$salt$hash`` (salt and hash in base64) for the ``[dashboard]`` users."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_maxmem(n, r, p), dklen=_DKLEN
    )
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored``; a malformed hash never matches (no exception)."""
    try:
        scheme, n_, r_, p_, salt_, digest_ = stored.split("$")
        n, r, p = int(n_), int(r_), int(p_)
        salt, digest = base64.b64decode(salt_), base64.b64decode(digest_)
        if scheme != "scrypt" or not (1 < n <= 2**20 and 0 < r <= 32 and 0 < p <= 16):
            return False
        candidate = hashlib.scrypt(
            password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_maxmem(n, r, p), dklen=len(digest)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, digest)
