"""The worker side: pending deliveries per department, drain jobs, batches, leases and
the sweeper, circuit breakers, worker processes. Channels never import this package:
they go through ``router.service``."""
