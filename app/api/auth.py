"""API keys: `api_key`, `api_keys` (comma-separated) and `api_keys_file` (one per line).

The file is a mounted Kubernetes Secret in production: the kubelet swaps it atomically when the
Secret changes, so it is stat()ed on each check and re-read when its identity (inode, size, mtime)
changes; keys rotate without a restart. An unreadable file keeps the keys last read (a swap in
progress must not open the server). Keys are compared as SHA-256 digests with
`hmac.compare_digest`, against every key without stopping at the first match, so neither a
key's length nor its position leaks through timing. Keys are never logged.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

from app.config import Settings

log = logging.getLogger(__name__)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _parse(text: str) -> set[bytes]:
    lines = (line.strip() for line in text.splitlines())
    return {_digest(line) for line in lines if line and not line.startswith("#")}


class KeyStore:
    def __init__(self, settings: Settings):
        fixed = [k for k in (settings.api_key, *settings.api_keys) if k]
        self._fixed = {_digest(k) for k in fixed}
        self._path: Path | None = settings.api_keys_file
        self._file_keys: set[bytes] = set()
        self._file_id: tuple | str | None = None
        if self._path is not None:
            self._reload(first=True)

    @property
    def enabled(self) -> bool:
        return bool(self._fixed) or self._path is not None

    def _reload(self, first: bool = False) -> None:
        try:
            st = os.stat(self._path)
            ident = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
            if ident == self._file_id:
                return
            keys = _parse(self._path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            if first or self._file_id != "unreadable":  # once per failure, not per request
                log.warning("cannot read api_keys_file %s (%s); keeping the %d key(s) last read",
                            self._path, type(exc).__name__, len(self._file_keys))
            self._file_id = "unreadable"
            return
        self._file_id = ident
        self._file_keys = keys
        log.info("api_keys_file %s: %d key(s)", self._path, len(keys))

    def check(self, token: str) -> bool:
        if self._path is not None:
            self._reload()
        given = _digest(token)
        ok = False
        for key in (*self._fixed, *self._file_keys):
            ok |= hmac.compare_digest(given, key)
        return ok and bool(token)


def bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
