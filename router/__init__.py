"""The tell-us-once router core: life events in, durable cases, fan-out to departments.

The core knows nothing of Flask. Channels (web, counter, CLI) call it with a Redis
connection and an adapter registry passed in explicitly.
"""

__version__ = "0.1.0"
