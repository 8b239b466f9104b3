"""``hotsite demo``: the whole DR story in one command — two local sites of the sample
application, the controller, the entry point and the site agents as real processes, a
write load through the entry point; the primary dies, the controller fails over by
itself, the old primary comes back and the service returns home; a report with each
move's RTO and RPO as the client measured them."""

from hotsite.demo.report import verify_details
from hotsite.demo.run import DEFAULT_ENTRY_PORT, DemoOptions, DemoResult, run_demo, stop_demo

__all__ = [
    "DEFAULT_ENTRY_PORT", "DemoOptions", "DemoResult", "run_demo", "stop_demo", "verify_details",
]  # fmt: skip
