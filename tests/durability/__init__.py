"""Durability suites: crash safety (SIGKILL mid-write) and multi-process concurrency."""
