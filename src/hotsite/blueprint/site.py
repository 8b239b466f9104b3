"""From the project file to a Deployment: which blueprint, inputs, secrets, driver."""

from __future__ import annotations

from pathlib import Path

from hotsite.blueprint.agent_project import controller_unreachable, nothing_to_do
from hotsite.blueprint.agent_service import AgentSetup
from hotsite.blueprint.apply import Deployment, Observer
from hotsite.blueprint.model import Blueprint, load_blueprint
from hotsite.blueprint.render import read_secrets, resolve_inputs
from hotsite.blueprint.runner import Infrastructure
from hotsite.blueprint.wheelhouse import wheelhouse
from hotsite.config import ProjectConfig
from hotsite.control_token import load_token
from hotsite.errors import ConfigError, HotsiteError
from hotsite.nodes.config import LocalProvider
from hotsite.state import StateStore


def blueprint_path(config: ProjectConfig, site: str) -> Path:
    site_config = config.site(site)
    if site_config.blueprint is None:
        raise ConfigError(
            f"site {site!r} has no blueprint",
            f"set sites.{site}.blueprint in {config.path} (see docs/blueprints.md)",
        )
    path = site_config.blueprint
    return path if path.is_absolute() else (config.path.parent / path).resolve()


def open_deployment(
    config: ProjectConfig,
    site: str,
    store: StateStore,
    infra: Infrastructure,
    *,
    observer: Observer | None = None,
    concurrency: int = 32,
    need_secrets: bool = True,
) -> Deployment:
    """Load and render-check the site's blueprint. Secrets are read from the environment
    now (a missing one is an error before anything runs) unless ``need_secrets`` is off
    (``plan``/``outputs``/``down`` can work without them)."""
    path = blueprint_path(config, site)
    blueprint = load_blueprint(path, site)
    site_config = config.site(site)
    inputs = resolve_inputs(
        blueprint, site_config.inputs, site, f"{config.path}: sites.{site}.inputs"
    )
    # An unknown provider is a mistake in the files: say so at plan time, not mid-up.
    for group, spec in blueprint.nodes.items():
        provider = spec.driver or site_config.driver
        try:
            config.nodes.provider(provider)
        except HotsiteError as exc:
            where = blueprint.where("nodes", group) if spec.driver else f"sites.{site}.driver"
            raise ConfigError(f"{where}: {exc.message}", exc.hint) from None
    if need_secrets:
        secrets = read_secrets(blueprint)
    else:
        # Stand-ins keep plans and fingerprints computable; they are never sent anywhere.
        secrets = {name: f"<secret:{name}>" for name in blueprint.secrets}
    return Deployment(
        site=site,
        blueprint=blueprint,
        blueprint_path=path,
        inputs=inputs,
        secrets=secrets,
        default_driver=site_config.driver,
        store=store,
        infra=infra,
        concurrency=concurrency,
        observer=observer,
        agent=agent_setup(config, site, blueprint, need_secrets),
    )


def agent_setup(
    config: ProjectConfig, site: str, blueprint: Blueprint, need_secrets: bool
) -> AgentSetup | None:
    """What the blueprint's built-in agent service needs from the project; None when the
    blueprint has none or the project gives the site's agent nothing to do (a burst
    site, a site no link ends at under no dr: section), so that none is placed."""
    agents = [(name, s) for name, s in blueprint.services.items() if s.agent is not None]
    if not agents or nothing_to_do(config, site):
        return None
    name, service = agents[0]
    provider = config.nodes.provider(
        blueprint.nodes[service.group].driver or config.site(site).driver
    )
    problem = None if isinstance(provider, LocalProvider) else controller_unreachable(config)
    if problem:
        raise ConfigError(f"{blueprint.where('services', name)}: {problem}")
    token = ""  # no dr: section, no controller: replication links only
    if config.dr is not None:
        token = load_token(config.dr).reveal() if need_secrets else "<secret:control_token>"
    return AgentSetup(config=config, site=site, token=token, wheelhouse=wheelhouse())
