"""Canonical JSON (sorted keys, no spaces, no NaN) and its SHA-256: the one text that every
config hash, task id and stored architecture of the toolkit is made of, so that a digest made
by one package is the digest another one makes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "json_sha256"]


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON text.

    Raises:
        TypeError, ValueError: ``value`` is not JSON-serialisable (or holds NaN or infinity).
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def json_sha256(value: Any) -> str:
    """The SHA-256 hex digest of :func:`canonical_json` of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
