"""Traffic: the load balancer (HAProxy) and, later, DNS and health probes."""
