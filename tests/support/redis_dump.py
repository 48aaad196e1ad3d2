"""Redis as it is stored: every key and value in raw bytes, a department's mock log, a
dump of the whole database to compare before and after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from redis import Redis

from router import keys


def mock_log(redis: Redis, department: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in redis.lrange(f"mock:{department}:log", 0, -1)]


def written_keys(redis: Redis) -> list[str]:
    """Every key but the mock register's (seeded before each test): what a test wrote."""
    found = (k.decode() for k in redis.scan_iter())
    return sorted(k for k in found if not k.startswith("mock:gro:"))


def case_keys(redis: Redis) -> list[str]:
    found = (k.decode() for k in redis.scan_iter(keys.case("*")))
    return sorted(k for k in found if not k.endswith(":history"))


def one_case_ref(redis: Redis) -> str:
    found = case_keys(redis)
    assert len(found) == 1, found
    return found[0].removeprefix(keys.case(""))


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def raw_values(redis: Redis) -> Iterator[tuple[str, bytes]]:
    """(key, bytes) for every key name, field and value stored in Redis, of any type."""
    for key in redis.scan_iter():
        name = _bytes(key).decode()
        values: list[Any] = [key]
        kind = _bytes(redis.type(key)).decode()
        if kind == "none":
            continue  # ran out between the scan and now (a wake key lives 1.5 s)
        if kind == "string":
            values.append(redis.get(key) or b"")
        elif kind == "hash":
            for field, value in redis.hgetall(key).items():
                values += [field, value]
        elif kind == "list":
            values += redis.lrange(key, 0, -1)
        elif kind == "set":
            values += redis.smembers(key)
        elif kind == "zset":
            values += redis.zrange(key, 0, -1)
        elif kind == "stream":
            entries: Any = redis.xrange(key)
            for _id, fields in entries:
                for field, value in fields.items():
                    values += [field, value]
        else:
            raise AssertionError(f"{name}: a Redis type these tests do not read: {kind}")
        for value in values:
            yield name, _bytes(value)


def keys_holding(redis: Redis, needle: str) -> set[str]:
    """The keys whose name or any stored value contains ``needle`` (case-insensitive)."""
    wanted = needle.lower().encode()
    return {name for name, value in raw_values(redis) if wanted in value.lower()}


def snapshot(redis: Redis) -> dict[bytes, bytes | None]:
    """Everything in Redis but web sessions (an anonymous visit may start one)."""
    return {
        key: redis.dump(key)
        for key in sorted(redis.scan_iter())
        if not key.startswith(keys.WEB_SESSION_PREFIX.encode())
    }
