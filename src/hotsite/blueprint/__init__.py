"""Blueprints: a site described once, brought up on demand, kept as described, torn down.

Public API: ``load_blueprint`` and ``Blueprint`` (the file), ``Deployment`` (plan, up,
down of one site), ``open_deployment`` (one from the project file),
``NodesInfrastructure`` (the real nodes and transports; tests use
``hotsite.testing.blueprints.DirectoryNodes`` instead), ``Infrastructure`` (what the
engine needs of either), ``Event``/``Observer``/``Outcome``/``site_lock`` (progress,
results, one run per site), ``describe``/``summary``/``as_dict`` (a plan for people and
scripts) and ``DeploymentStore`` (the recorded deployments).

blueprint uses traffic beside it on its floor for the site's load balancer (HAProxy).
"""

from hotsite.blueprint.apply import Deployment
from hotsite.blueprint.infra import NodesInfrastructure
from hotsite.blueprint.model import Blueprint, load_blueprint
from hotsite.blueprint.outcome import Event, Observer, Outcome, site_lock
from hotsite.blueprint.plan import Plan, as_dict, describe, summary
from hotsite.blueprint.runner import Infrastructure
from hotsite.blueprint.site import open_deployment
from hotsite.blueprint.state import DeploymentStore

__all__ = [
    "Blueprint",
    "Deployment",
    "DeploymentStore",
    "Event",
    "Infrastructure",
    "NodesInfrastructure",
    "Observer",
    "Outcome",
    "Plan",
    "as_dict",
    "describe",
    "load_blueprint",
    "open_deployment",
    "site_lock",
    "summary",
]
