"""Data synchronization: capture → ship → journal at the target → apply, exactly once."""
