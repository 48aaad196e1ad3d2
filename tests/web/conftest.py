"""What the web tests share beyond tests/conftest.py: a partner service's API key."""

from __future__ import annotations

import pytest
from redis import Redis

from tests.support.api import api_key, bearer


@pytest.fixture
def partner(redis: Redis) -> dict[str, str]:
    """Headers of an API client that may send every life event and vouches for nothing."""
    return bearer(api_key(redis, "partner"))
