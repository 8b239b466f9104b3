"""The live view (rich): the current step, which site serves, the client's writes/s
and errors/s, each link's lag per stage — redrawn four times a second. Without a
terminal (a log, a test) it prints the story's lines only, each with its time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hotsite.demo.sampler import STAGES, Sampler
from hotsite.demo.story import Steps


class LiveView:
    def __init__(
        self, print_line: Callable[[str], None], steps: Steps, began: float, enabled: bool
    ) -> None:
        self.print_line = print_line
        self.steps = steps
        self.began = began
        self.enabled = enabled
        self.sampler: Sampler | None = None
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        if self.enabled:
            self._live = Live(get_renderable=self.render, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def say(self, line: str) -> None:
        stamped = f"[{time.time() - self.began:5.1f} s] {line}"
        if self._live is not None:
            self._live.console.print(stamped, highlight=False, soft_wrap=True)
        else:
            self.print_line(stamped)

    def render(self) -> Group:
        sample = self.sampler.latest() if self.sampler else None
        head = Text.assemble(
            ("hotsite demo ", "bold"), f"{time.time() - self.began:5.1f} s  ",
            ("step: ", "dim"), (self.steps.current(), "bold cyan"),
        )  # fmt: skip
        if sample is None:
            return Group(head)
        serving = Text.assemble(
            ("serving: ", "dim"), (sample.serving or "nobody", "bold green" if sample.serving else "bold red"),
            ("   writes/s ", "dim"), f"{sample.writes_per_s:5.0f}",
            ("   errors/s ", "dim"), (f"{sample.errors_per_s:5.0f}", "red" if sample.errors_per_s else ""),
        )  # fmt: skip
        lags = Table("link", *(f"{stage} lag" for stage in STAGES), box=None, pad_edge=False)
        for link, stages in sorted(sample.lag.items()):
            lags.add_row(link, *(_seconds(stages.get(stage)) for stage in STAGES))
        if not sample.lag:
            lags.add_row("(no agent reporting)", "", "", "")
        return Group(head, serving, lags)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
