"""Blueprints: a site described once, brought up on demand, kept as described, torn down."""
