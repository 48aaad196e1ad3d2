"""Chaos tests: real Redis, real worker processes, faults injected mid-run."""
