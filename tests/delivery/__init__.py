"""Delivery to the departments by real workers: fan-out, retries, recovery, idempotency."""
