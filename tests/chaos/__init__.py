"""Chaos tests: real Redis, real worker processes, faults injected mid-run.

workload.py makes the submissions, world.py runs a scenario's own Redis and workers
and submits them, invariant.py checks what they end as; test_chaos.py has the scenarios.
"""
