"""Which steps run, as data (pyinfra-style cases): recorded fingerprints in, steps out."""

from __future__ import annotations

import pytest

from hotsite.blueprint.desired import Placement, RenderedStep
from hotsite.blueprint.plan import steps_to_run
from hotsite.blueprint.state import SiteRecord


def placement(steps: dict[str, str], reload: bool = False) -> Placement:
    rendered = {
        name: RenderedStep(name=name, command="x", fingerprint=fp) for name, fp in steps.items()
    }
    if reload:
        rendered["reload"] = RenderedStep(name="reload", command="r", fingerprint="r")
    return Placement("svc", "n1", "g", rendered, {}, {}, None, [], reload)


CASES = [
    # (desired fingerprints, recorded fingerprints, has reload, expected steps, reasons)
    ({"install": "a", "start": "b"}, {}, False, ["install", "start"], {"install": "new"}),
    ({"install": "a", "start": "b"}, {"install": "a", "start": "b"}, False, [], {}),
    ({"install": "a", "start": "b"}, {"install": "a"}, False, ["start"], {"start": "new"}),
    (
        {"install": "a", "configure": "c2", "start": "b", "stop": "s"},
        {"install": "a", "configure": "c1", "start": "b"},
        False,
        ["configure", "stop", "start"],
        {"configure": "changed", "stop": "restart"},
    ),
    (
        {"upload": "u2", "configure": "c", "start": "b"},
        {"upload": "u1", "configure": "c", "start": "b"},
        True,
        ["upload", "configure", "reload"],
        {"upload": "changed"},
    ),
    # No stop step: a changed start just runs again.
    ({"start": "b2"}, {"start": "b1"}, False, ["start"], {"start": "changed"}),
]


@pytest.mark.parametrize(("desired", "recorded", "reload", "expected", "reasons"), CASES)
def test_steps_to_run(
    desired: dict[str, str],
    recorded: dict[str, str],
    reload: bool,
    expected: list[str],
    reasons: dict[str, str],
) -> None:
    record = SiteRecord(site="s", steps={("n1", "svc", k): v for k, v in recorded.items()})
    steps, why = steps_to_run(placement(desired, reload), record)
    assert steps == expected
    for step, reason in reasons.items():
        assert why[step] == reason
