"""What a blueprint site exposes once it is up: the outputs ``hotsite up`` recorded.

The blueprint layer writes them (``bp_sites.outputs`` in the state store, see
blueprint/state.py); the project file's loader reads them here, at the bottom floor, so
that a site built from a blueprint gets its database URL (output ``database``) and its
entry-point server (output ``url``) without the addresses being copied by hand — and
without the configuration importing the blueprint layer above it. Read-only: a missing
store or table means no site is up yet.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

__all__ = ["recorded_outputs", "server_of_url"]


def recorded_outputs(state_db: Path) -> dict[str, dict[str, Any]]:
    """site → its outputs, for every blueprint site that is not down."""
    if not state_db.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return {}
    try:
        rows = conn.execute("SELECT site, outputs FROM bp_sites WHERE status <> 'down'").fetchall()
    except sqlite3.Error:  # no blueprint table yet: nothing was brought up
        return {}
    finally:
        conn.close()
    found: dict[str, dict[str, Any]] = {}
    for site, outputs in rows:
        try:
            value = json.loads(outputs or "{}")
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found[str(site)] = value
    return found


def server_of_url(url: str) -> str | None:
    """``http://10.0.0.5:8080/`` → ``10.0.0.5:8080`` (the entry point's server)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.hostname is None:
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    return f"{host}:{port}"
