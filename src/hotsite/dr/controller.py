"""The controller's HTTP server: the record, the primary's lease, the sites' health.

Routes (JSON; every one needs ``Authorization: Bearer <project token>``):

- ``GET  /v1/record`` — primary, epoch, lease holder and time left, move in flight;
- ``POST /v1/lease`` ``{"site", "epoch"}`` — grant or renew the primary's lease;
- ``POST /v1/report`` ``{"site", "report"}`` — an agent's health report;
- ``GET  /v1/sites`` — the last report of each site and its age.

A request without the token, or with a wrong one, is answered 401, changes nothing and
is logged (address, method, path — never the token it carried). aiohttp, because it is
asyncio like the rest of hotsite's long-running parts, and serves TLS itself.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from hotsite.dr.record import RecordStore
from hotsite.dr.token import Token
from hotsite.errors import ConfigError
from hotsite.logs import get_logger
from hotsite.tls import TLSSettings

log = get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ControllerState:
    records: RecordStore
    token: Token
    lease: float
    sites: frozenset[str]
    reports: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    refused: int = 0  # requests refused for their token, since start
    unreached: Callable[[], dict[str, float]] | None = None  # the watch's view, if it runs
    # Whether the watch suspects a site (detector.suspect): its lease is then not
    # extended, so it runs out while the verdict is still coming. None: always extended.
    suspect: Callable[[str], bool] | None = None
    withheld: int = 0  # renewals answered without an extension, since start
    clock: Callable[[], float] = time.time


def make_app(state: ControllerState) -> web.Application:
    app = web.Application(middlewares=[_authenticated(state)], client_max_size=256 * 1024)
    app["state"] = state
    app.add_routes(
        [
            web.get("/v1/record", _record),
            web.post("/v1/lease", _lease),
            web.post("/v1/report", _report),
            web.get("/v1/sites", _sites),
        ]
    )
    return app


def _authenticated(state: ControllerState) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization")
        if not state.token.matches(header):
            state.refused += 1
            log.warning(
                "request refused",
                reason="no token" if header is None else "wrong token",
                peer=request.remote,
                method=request.method,
                path=request.path,
            )
            return web.json_response({"error": "unauthorized"}, status=401)
        return await handler(request)

    return check


def _state(request: web.Request) -> ControllerState:
    state: ControllerState = request.app["state"]
    return state


async def _body(request: web.Request, *keys: str) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='{"error": "the body is not JSON"}') from None
    if not isinstance(body, dict) or any(key not in body for key in keys):
        raise web.HTTPBadRequest(text=json.dumps({"error": f"expected keys {list(keys)}"}))
    site = body.get("site")
    if "site" in keys and site not in _state(request).sites:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"unknown site {site!r}"}))
    return body


async def _record(request: web.Request) -> web.Response:
    state = _state(request)
    record = await asyncio.to_thread(state.records.read)
    if record is None:
        return web.json_response({"error": "no record"}, status=503)
    return web.json_response(record.as_dict(state.clock()))


async def _lease(request: web.Request) -> web.Response:
    state = _state(request)
    body = await _body(request, "site", "epoch")
    if not isinstance(body["epoch"], int):
        raise web.HTTPBadRequest(text='{"error": "epoch must be an integer"}')
    site = body["site"]
    # A suspect primary keeps what is left of its lease but gets no more: refusing
    # outright would fence a primary that one lost probe made suspect; not extending
    # costs nothing unless the suspicion lasts until the lease's end.
    suspect = state.suspect is not None and state.suspect(site)
    ttl = 0.0 if suspect else state.lease
    grant = await asyncio.to_thread(
        state.records.grant_lease, site, body["epoch"], ttl, state.clock()
    )
    reason = grant.reason
    if suspect:
        state.withheld += 1
        if grant.granted:
            reason = "not extended: neither the controller nor another site reaches its database"
            log.info("lease not extended: site suspect", site=site, left=round(grant.ttl, 3))
    if not grant.granted:
        log.info("lease refused", site=body["site"], reason=grant.reason)
    return web.json_response(
        {
            "granted": grant.granted,
            "ttl": grant.ttl,
            "reason": reason,
            "record": grant.record.as_dict(state.clock()),
        }
    )


async def _report(request: web.Request) -> web.Response:
    state = _state(request)
    body = await _body(request, "site", "report")
    if not isinstance(body["report"], dict):
        raise web.HTTPBadRequest(text='{"error": "report must be an object"}')
    state.reports[body["site"]] = (time.monotonic(), body["report"])
    return web.json_response({"ok": True})


async def _sites(request: web.Request) -> web.Response:
    state = _state(request)
    now = time.monotonic()
    unreached = state.unreached() if state.unreached else {}
    return web.json_response(
        {
            site: {
                "controller_unreached_for": unreached.get(site),
                "age": round(now - state.reports[site][0], 3) if site in state.reports else None,
                "report": state.reports[site][1] if site in state.reports else None,
            }
            for site in sorted(state.sites)
        }
    )


def server_context(tls: TLSSettings | None) -> ssl.SSLContext | None:
    """The controller serves TLS with control_tls's cert and key, when they are set."""
    if tls is None or tls.cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(tls.cert, keyfile=tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot use control_tls.cert {tls.cert} ({getattr(exc, 'strerror', None) or exc})",
            "check the path and that it holds a PEM certificate and key readable by this user",
        ) from None
    return context


async def serve(
    state: ControllerState,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    ready: Callable[[], None] | None = None,
    background: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Run until SIGTERM or SIGINT; ``background`` (the watch) runs alongside."""
    runner = web.AppRunner(make_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"the controller cannot listen on {host}:{port} ({exc.strerror})",
                "another process uses it? change dr.controller.listen",
            ) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(background()) if background is not None else None
        if ready is not None:
            ready()
        await stop.wait()
        if task is not None:
            task.cancel()
    finally:
        await runner.cleanup()
