"""The site agent (``hotsite agent --site NAME``) and its duties."""

from hotsite.agent.duties import site_duties
from hotsite.agent.links import LinkDuty
from hotsite.agent.site import SiteAgent, agent_status_path, duty_errors

__all__ = ["LinkDuty", "SiteAgent", "agent_status_path", "duty_errors", "site_duties"]
