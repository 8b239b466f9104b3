"""Real components for tests, demos and benchmarks: private servers started on demand."""
