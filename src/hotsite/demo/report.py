"""The demo's report: ``report.json`` (every figure, every move's timeline, the
samples) and ``report.html`` — one self-contained file that opens offline: inline CSS,
the plot as inline SVG, no script, nothing fetched."""

from __future__ import annotations

import html
import json
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hotsite.demo.plot import render_svg
from hotsite.demo.sampler import Sampler
from hotsite.demo.story import Steps, Story

# Issue 12's goals on this machine: a failover's outage under 3 s from the failure and
# its loss under 200 ms of writes; a relocate loses nothing, pausing writes under 1 s.
GOALS = {"failover": (3.0, 0.2), "relocate": (1.0, 0.0)}


def verdicts(moves: list[dict[str, Any]], verify: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for move in moves:
        client = move["client"]
        rto_goal, rpo_goal = GOALS.get(move["kind"], (3.0, 0.0))
        rto = client["rto_seconds"]
        steps = [s["step"] for s in move.get("steps", [])]
        if move["kind"] == "failover":
            found.append(_verdict(f"{move['id']}: the controller detected the failure and"
                                  " failed over by itself", "failure detected" in steps))  # fmt: skip
        found.append(_verdict(f"{move['id']} {move['kind']}: RTO {_s(rto)} < {rto_goal:g} s",
                              rto is not None and rto < rto_goal))  # fmt: skip
        found.append(_verdict(
            f"{move['id']} {move['kind']}: RPO {client['rpo_writes']} acknowledged writes"
            f" ({client['rpo_seconds']:.3f} s) ≤ {rpo_goal:g} s",
            client["rpo_seconds"] <= rpo_goal and (rpo_goal > 0 or client["rpo_writes"] == 0),
        ))  # fmt: skip
    if verify:
        missing = sum(len(v) for v in verify.get("acknowledged_missing", {}).values())
        found.append(
            _verdict("hotsite verify: both sites identical", bool(verify.get("identical")))
        )
        found.append(_verdict(
            f"every one of {verify.get('acknowledged_writes', 0)} acknowledged writes is on both"
            " sites", missing == 0,
        ))  # fmt: skip
    return found


def verify_details(verify: dict[str, Any]) -> list[str]:
    """Why the sites were not proved identical, one line each: the verify's error, the
    tables that differed, the acknowledged writes a site lacks — what a failed run (a CI
    log, say) must show without its report at hand."""
    lines = []
    report = verify.get("report", {})
    if verify and not verify.get("identical"):
        if report.get("error"):
            lines.append(f"verify (exit {verify.get('exit_status')}): {report['error']}")
        for t in report.get("tables", []):
            if t.get("status") != "identical":
                lines.append(
                    f"verify: {t['table']} {t['status']}: {t['missing']} missing,"
                    f" {t['extra']} extra, {t['different']} different,"
                    f" {t['unsettled']} unsettled of {t['rows']} rows"
                )
    for site, seqs in verify.get("acknowledged_missing", {}).items():
        if seqs:
            lines.append(f"{site} lacks acknowledged writes {', '.join(map(str, seqs[:10]))}"
                         + (" …" if len(seqs) > 10 else ""))  # fmt: skip
    return lines


def _verdict(text: str, ok: bool) -> dict[str, Any]:
    return {"claim": text, "ok": ok}


def _s(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} s"


def report_data(
    story: Story, sampler: Sampler, steps: Steps, began: float, seconds: float, finished: bool
) -> dict[str, Any]:
    writes = story.load.snapshot()
    return {
        "began": began,
        "seconds": round(seconds, 3),
        "finished": finished,
        "writes": {
            "sent": len(writes),
            "acknowledged": sum(1 for w in writes if w.ok),
            "errors": dict(Counter(w.error for w in writes if not w.ok).most_common(10)),
        },
        "steps": [asdict(s) for s in steps.items],
        "moves": story.moves,
        "errant_tail": story.errant,
        "verify": story.verify,
        "verdicts": verdicts(story.moves, story.verify),
        "samples": [asdict(s) for s in sampler.samples],
    }


def write_report(
    directory: Path, story: Story, sampler: Sampler, steps: Steps, began: float,
    seconds: float, finished: bool,
) -> Path:  # fmt: skip
    data = report_data(story, sampler, steps, began, seconds, finished)
    (directory / "report.json").write_text(json.dumps(data, indent=1, default=str))
    page = directory / "report.html"
    page.write_text(render_html(data))
    return page


def render_html(data: dict[str, Any]) -> str:
    began = data["began"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>hotsite demo report</title><style>",
        _CSS,
        "</style></head><body>",
        "<h1>hotsite demo: the whole DR story</h1>",
        f"<p>{html.escape(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(began)))} — "
        f"{data['seconds']:.1f} s, {data['writes']['acknowledged']} of {data['writes']['sent']}"
        " client writes acknowledged through the entry point"
        f"{'' if data['finished'] else ' — <b>interrupted</b>'}</p>",
        "<h2>Verdicts</h2><ul class=verdicts>",
        *(
            f"<li class={'ok' if v['ok'] else 'no'}>{'✔' if v['ok'] else '✘'} {html.escape(v['claim'])}</li>"
            for v in data["verdicts"]
        ),
        "</ul>",
        "<h2>Client writes and replication lag</h2>",
        f"<figure id=plot>{render_svg(data) if data['samples'] else '<p>no samples</p>'}</figure>",
    ]
    for move in data["moves"]:
        client = move["client"]
        parts += [
            f"<h2>{html.escape(move['kind'])} {html.escape(move['from'])} → {html.escape(move['to'])}"
            f" <small>{html.escape(move['id'])}, epoch {move.get('epoch_after')}</small></h2>",
            f"<p>RTO <b>{_s(client['rto_seconds'])}</b> (the client's last acknowledged write before"
            f" {html.escape(client['event'])} → its first one served by {html.escape(move['to'])});"
            f" RPO <b>{client['rpo_writes']}</b> acknowledged writes lost"
            f" ({client['rpo_seconds']:.3f} s); {client['failed_writes']} writes failed meanwhile.</p>",
            "<table><tr><th>+s</th><th>step</th><th>detail</th></tr>",
            *(
                f"<tr><td>{s['after']:.3f}</td><td>{html.escape(s['step'])}</td>"
                f"<td>{html.escape(s['detail'])}</td></tr>"
                for s in move.get("steps", [])
            ),
            "</table>",
        ]
    if data["errant_tail"]:
        tail = data["errant_tail"]
        parts.append(
            f"<h2>Failback</h2><p>errant tail of the old primary: <b>{tail['transactions']}</b>"
            f" transactions, {tail['rows']} row changes;"
            f" {html.escape(tail['handled'] or 'nothing to undo')};"
            f" exported to {html.escape(', '.join(tail['exported_to']))}.</p>"
        )
    parts += [
        "<h2>Steps</h2><table><tr><th>at +s</th><th>took</th><th>step</th></tr>",
        *(
            f"<tr><td>{s['started'] - began:.1f}</td>"
            f"<td>{(s['ended'] or s['started']) - s['started']:.1f} s</td>"
            f"<td>{html.escape(s['name'])}</td></tr>"
            for s in data["steps"]
        ),
        "</table><p class=foot>The same data: report.json beside this file.</p></body></html>",
    ]
    return "\n".join(parts)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;max-width:1060px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}small{color:#777;font-weight:normal}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:2px 10px;text-align:left}
ul.verdicts{list-style:none;padding:0}li.ok{color:#17692d}li.no{color:#b00020;font-weight:bold}
figure{margin:0}figure svg{width:100%;height:auto}.foot{color:#777}
"""
