"""Traffic: the load balancer (HAProxy) and, later, DNS and health probes.

Public API: ``HAProxySite`` and ``Backend`` (one site's load balancer and its servers),
``render_config``, ``lifecycle`` (its steps on a node), ``runtime_command`` and
``set_server_state`` (the runtime API, no reload), ``DEFAULT_DIR``.
"""

from hotsite.traffic.haproxy import (
    DEFAULT_DIR,
    Backend,
    HAProxySite,
    lifecycle,
    render_config,
    runtime_command,
    set_server_state,
)

__all__ = [
    "DEFAULT_DIR",
    "Backend",
    "HAProxySite",
    "lifecycle",
    "render_config",
    "runtime_command",
    "set_server_state",
]
