"""The agents' (and commands') side of the controller's HTTP API.

The standard library's ``http.client``, on purpose: the lease keeper runs in a thread of
its own and needs blocking calls with a hard timeout and nothing else — one persistent
connection, reopened after any failure.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from typing import Any

from hotsite.dr.token import Token
from hotsite.errors import HotsiteError
from hotsite.tls import TLSSettings, client_context


class ControllerUnreachable(HotsiteError):
    """No answer from the controller in time: worth retrying."""

    recoverable = True


class ControllerRefused(HotsiteError):
    """The controller answered with an error (a wrong token, a bad request)."""


class ControllerClient:
    def __init__(
        self, base_url: str, token: Token, tls: TLSSettings | None = None, timeout: float = 1.0
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.base_url = base_url
        self._secure = parsed.scheme == "https"
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or (443 if self._secure else 80)
        self._token = token
        self._context: ssl.SSLContext | None = None
        if self._secure:
            self._context = client_context(tls or TLSSettings(), f"the controller {base_url}")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def record(self) -> dict[str, Any]:
        return self._call("GET", "/v1/record")

    def lease(self, site: str, epoch: int) -> dict[str, Any]:
        return self._call("POST", "/v1/lease", {"site": site, "epoch": epoch})

    def report(self, site: str, report: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/report", {"site": site, "report": report})

    def sites(self) -> dict[str, Any]:
        return self._call("GET", "/v1/sites")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": self._token.header(), "Content-Type": "application/json"}
        try:
            conn = self._connection()
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise ControllerUnreachable(
                f"the controller at {self.base_url} did not answer ({type(exc).__name__}: {exc})",
                "check that 'hotsite controller' runs and that its address is reachable",
            ) from None
        if response.status == 401:
            raise ControllerRefused(
                f"the controller at {self.base_url} refused the control token",
                "give the agent the project's token ($HOTSITE_CONTROL_TOKEN or"
                " dr.controller.token_file)",
            )
        try:
            decoded = json.loads(payload or b"null")
        except json.JSONDecodeError:
            decoded = {"error": payload[:200].decode(errors="replace")}
        if response.status >= 400:
            reason = decoded.get("error") if isinstance(decoded, dict) else decoded
            raise ControllerRefused(
                f"the controller refused {method} {path} ({response.status}: {reason})"
            )
        return decoded

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._secure:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=self._context
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout
                )
        return self._conn
