"""Secrets out of what hotsite keeps and shows: one way to mask them, used everywhere.

The command log, the blueprint engine's failure reports, cloud driver errors and the
structured log all mask through here, so they cannot drift apart.

- Masking comes **before** any cutting. A tail cut first could start inside a secret and
  keep its end, which no longer matches the whole value and so is never masked.
- **Every** non-empty value is masked, however short. hotsite cannot tell a short
  secret from a short ordinary value, and an over-masked log line is only less readable,
  while a leaked secret cannot be taken back.
- Short secrets cannot be hidden by masking anyway: ``ab`` masked in ``grab`` reads
  ``gr***``, which gives the secret away. So where hotsite reads a secret it is told is
  one (a blueprint's ``secrets:``), values shorter than ``MIN_SECRET_LENGTH`` are
  refused (``check_secret_length``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
MIN_SECRET_LENGTH = 8
# Keys of structured log events whose values are secrets whatever they hold.
SECRET_KEYS = re.compile(r"pass(word)?|secret|token|key_material|credential", re.I)
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``, longest first (so a secret
    that contains another goes whole)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact_urls(text: str) -> str:
    """Passwords in URLs (``scheme://user:password@``) masked, wherever they come from."""
    return _URL_PASSWORD.sub(rf"\1{MASK}@", text)


def tail(text: str, limit: int) -> str:
    """The last ``limit`` characters, marked with ``…`` when cut (mask before cutting)."""
    return text if len(text) <= limit else "…" + text[-limit:]


def check_secret_length(name: str, value: str, source: str) -> str | None:
    """Why ``value`` is refused as a secret (too short to hide in a log), or None."""
    if len(value) >= MIN_SECRET_LENGTH:
        return None
    return (
        f"secret {name!r} ({source}) has {len(value)} character(s); hotsite needs at least"
        f" {MIN_SECRET_LENGTH}: a shorter one is guessable and cannot be hidden in logs"
        f" (masking 'ab' in 'grab' shows it)"
    )
