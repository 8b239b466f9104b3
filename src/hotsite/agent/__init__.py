"""The site agent (``hotsite agent --site NAME``) and its duties."""

from hotsite.agent.duties import site_duties
from hotsite.agent.links import LinkDuty
from hotsite.agent.site import SiteAgent, agent_status_path

__all__ = ["LinkDuty", "SiteAgent", "agent_status_path", "site_duties"]
