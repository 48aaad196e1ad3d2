"""Benchmarks for issue 7: the router against bare RQ, Celery and Dramatiq on one Redis.

Run with ``python -m benchmarks.run`` (see benchmarks/README.md). Nothing here is
imported by the router itself; Celery and Dramatiq come from the ``bench`` extra.
"""
