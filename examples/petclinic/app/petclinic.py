"""PetClinic: owners, their pets, the pets' visits, and the vets — a web page and a JSON API.

Standard library only (wsgiref, threaded) plus PyMySQL, so a node needs nothing but
python3 and the wheelhouse the blueprint uploads. Configuration comes from the
environment: DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME, APP_PORT.

JSON API:  GET/POST /api/owners, /api/pets, /api/visits; GET /api/vets; GET /health.
Web page:  GET / lists everything, with forms that POST to /owners, /pets, /visits.
"""

from __future__ import annotations

import html
import json
import os
import socket
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pymysql

NODE = os.environ.get("NODE_NAME") or socket.gethostname()
_local = threading.local()

TABLES = {
    "owners": ("first_name", "last_name", "address", "city", "telephone"),
    "pets": ("name", "birth_date", "type", "owner_id"),
    "visits": ("pet_id", "visit_date", "description"),
}


def db() -> Any:
    """One connection per server thread, re-opened after the database went away."""
    conn = getattr(_local, "conn", None)
    if conn is not None:
        try:
            conn.ping(reconnect=True)
            return conn
        except pymysql.MySQLError:
            conn = None
    conn = pymysql.connect(
        host=os.environ.get("DB_HOST", "127.0.0.1"),
        port=int(os.environ.get("DB_PORT", "3306")),
        user=os.environ.get("DB_USER", "petclinic"),
        password=os.environ.get("DB_PASSWORD", ""),
        database=os.environ.get("DB_NAME", "petclinic"),
        autocommit=True,
        connect_timeout=3,
        cursorclass=pymysql.cursors.DictCursor,
    )
    _local.conn = conn
    return conn


def query(sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with db().cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def insert(table: str, data: dict[str, Any]) -> dict[str, Any]:
    columns = [c for c in TABLES[table] if data.get(c) not in (None, "")]
    missing = [c for c in TABLES[table][:1] if c not in columns]
    if missing:
        raise ValueError(f"{missing[0]} is required")
    with db().cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
            tuple(data[c] for c in columns),
        )
        row_id = cur.lastrowid
    return {"id": row_id, **{c: data[c] for c in columns}}


def listing(table: str) -> list[dict[str, Any]]:
    if table == "vets":
        return query(
            "SELECT v.id, v.first_name, v.last_name,"
            " GROUP_CONCAT(s.name ORDER BY s.name) AS specialties FROM vets v"
            " LEFT JOIN vet_specialties vs ON vs.vet_id = v.id"
            " LEFT JOIN specialties s ON s.id = vs.specialty_id GROUP BY v.id ORDER BY v.id"
        )
    return query(f"SELECT * FROM {table} ORDER BY id")


def _json(start: Any, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    start(status, [("Content-Type", "application/json"), ("X-Served-By", NODE)])
    return [data]


def _form(environ: dict[str, Any]) -> dict[str, Any]:
    size = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(size) if size else b""
    if environ.get("CONTENT_TYPE", "").startswith("application/json"):
        data = json.loads(raw or b"{}")
        return data if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(raw.decode()).items()}


def page() -> bytes:
    parts = ["<!doctype html><title>PetClinic</title><h1>PetClinic</h1>"]
    forms = {
        "owners": "Add owner",
        "pets": "Add pet (owner_id, type: cat, dog…)",
        "visits": "Add visit",
    }
    for table in ("owners", "pets", "visits", "vets"):
        rows = listing(table)
        parts.append(f"<h2>{table.title()} ({len(rows)})</h2><table border=1>")
        if rows:
            parts.append("<tr>" + "".join(f"<th>{html.escape(k)}</th>" for k in rows[0]) + "</tr>")
        for row in rows:
            cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values())
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
        if table in forms:
            fields = "".join(f"<input name={c} placeholder={c}> " for c in TABLES[table])
            parts.append(
                f"<form method=post action=/{table}>{fields}"
                f"<button>{html.escape(forms[table])}</button></form>"
            )
    parts.append(f"<p><small>served by {html.escape(NODE)}</small>")
    return "".join(parts).encode()


def app(environ: dict[str, Any], start: Any) -> list[bytes]:
    path, method = environ.get("PATH_INFO", "/"), environ["REQUEST_METHOD"]
    try:
        if path == "/health":
            query("SELECT 1")
            return _json(start, "200 OK", {"status": "ok", "node": NODE})
        if path == "/":
            start("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("X-Served-By", NODE)])
            return [page()]
        name = path.removeprefix("/api/").strip("/")
        if path.startswith("/api/") and name in (*TABLES, "vets"):
            if method == "GET":
                return _json(start, "200 OK", listing(name))
            if method == "POST" and name in TABLES:
                return _json(start, "201 Created", insert(name, _form(environ)))
        if method == "POST" and path.strip("/") in TABLES:  # the web page's forms
            insert(path.strip("/"), _form(environ))
            start("303 See Other", [("Location", "/")])
            return [b""]
        return _json(start, "404 Not Found", {"error": f"no route {method} {path}"})
    except ValueError as exc:
        return _json(start, "400 Bad Request", {"error": str(exc)})
    except pymysql.MySQLError as exc:
        return _json(start, "503 Service Unavailable", {"error": f"database: {exc.args[-1]}"})


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    # wsgiref writes the headers and the body in two sends: with Nagle's algorithm the
    # body waits for the client's delayed ACK of the headers, 40 ms on every request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # health checks every 500 ms
        if "/health" not in (args[0] if args else ""):
            super().log_message(format, *args)


def main() -> None:
    port = int(os.environ.get("APP_PORT", sys.argv[1] if len(sys.argv) > 1 else "8080"))
    server = make_server("0.0.0.0", port, app, server_class=_Server, handler_class=_QuietHandler)
    print(f"petclinic on {NODE} listening on :{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
