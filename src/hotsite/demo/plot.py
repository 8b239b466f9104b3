"""The report's plot: the client's writes/s and errors/s, and each link's replication
lag, over the demo's time, with the moves marked — drawn by matplotlib (Agg, no
display) as an SVG string for inlining in the HTML file (no image files, no CDN)."""

from __future__ import annotations

import io
from typing import Any

MOVE_COLOURS = {"failover": "#d62728", "relocate": "#1f77b4", "failback": "#9467bd"}


def render_svg(data: dict[str, Any]) -> str:
    """``data``: the report's JSON (samples, moves, began)."""
    # Here, not at the top: every hotsite command imports the demo's CLI, and matplotlib
    # took a third of a second of each one's start.
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: no display on a server or in a test
    import matplotlib.pyplot as plt

    began = float(data["began"])
    samples = data["samples"]
    times = [s["at"] - began for s in samples]
    with plt.rc_context({"svg.fonttype": "none", "font.size": 9}):
        fig, (writes, lag) = plt.subplots(
            2, 1, figsize=(10, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
        )
        writes.plot(times, [s["writes_per_s"] for s in samples], color="#2ca02c", lw=1.4,
                    label="acknowledged writes/s")  # fmt: skip
        writes.plot(times, [s["errors_per_s"] for s in samples], color="#d62728", lw=1.0,
                    label="failed writes/s")  # fmt: skip
        writes.set_ylabel("client writes/s")
        writes.set_ylim(bottom=0)
        links = sorted({link for s in samples for link in s["lag"]})
        for link, colour in zip(links, ("#ff7f0e", "#17becf", "#8c564b"), strict=False):
            for stage, style in (("apply", "-"), ("ship", ":")):
                values = [_lag(s, link, stage) for s in samples]
                lag.plot(times, values, style, color=colour, lw=1.2, label=f"{link} {stage}")
        lag.set_ylabel("replication lag (s)")
        lag.set_xlabel("seconds since the demo started")
        lag.set_ylim(bottom=0)
        for axes in (writes, lag):
            axes.grid(alpha=0.3)
            _mark_moves(axes, data["moves"], began, label=axes is writes)
        writes.legend(loc="center right", fontsize=8, ncol=2)
        if links:
            lag.legend(loc="upper right", fontsize=8, ncol=2)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg")
        plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg") :]  # the XML prologue has no place inside HTML


def _lag(sample: dict[str, Any], link: str, stage: str) -> float:
    value = sample["lag"].get(link, {}).get(stage)
    return float("nan") if value is None else float(value)  # a gap where no agent reported


def _mark_moves(axes: Any, moves: list[dict[str, Any]], began: float, label: bool) -> None:
    for move in moves:
        colour = MOVE_COLOURS.get(move["kind"], "#7f7f7f")
        event = move["client"]["event_at"] - began
        end = (move["client"]["first_ok_after"] or move["finished"] or move["started"]) - began
        axes.axvspan(event, max(end, event + 0.05), color=colour, alpha=0.15, lw=0)
        axes.axvline(event, color=colour, lw=1, ls="--")
        if label:
            rto = move["client"]["rto_seconds"]
            text = f"{move['kind']} → {move['to']}" + (
                f"\nRTO {rto:.2f} s" if rto is not None else ""
            )
            axes.annotate(text, (event, 1), xycoords=("data", "axes fraction"), xytext=(3, -4),
                          textcoords="offset points", va="top", fontsize=8, color=colour)  # fmt: skip
