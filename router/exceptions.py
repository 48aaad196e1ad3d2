"""The core's errors: each carries words a person can read."""

from collections.abc import Mapping

from redis.exceptions import RedisError

# The store could not do what was asked: Redis down, restarting, or full (maxmemory with
# noeviction refuses writes rather than dropping cases). Channels answer it "try again
# later" (503), never a 500, without importing the store's own library.
StoreUnavailable = RedisError


class NotReplicated(RedisError):
    """A submission reached the primary, but not the replicas it must reach before its
    reference is shown (REDIS_WAIT_REPLICAS) in time. A store outage, so channels
    answer "try again" (503) as for any; the case is kept, and the same submission key
    finds it again, waiting once more for the replicas before giving its reference."""


class RouterError(Exception):
    """Base error of the router core; ``message`` is a translatable message id."""

    message = "Something went wrong"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class ValidationFailed(RouterError):
    """A submission was refused: one message per field, saying how to fix it."""

    message = "There is a problem with the answers"

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__()
        self.errors: dict[str, str] = dict(errors)

    def __str__(self) -> str:
        return "; ".join(f"{field}: {msg}" for field, msg in self.errors.items())


class UnknownCase(RouterError):
    """No case has that reference."""

    message = "No case was found with that reference"


class UnknownDelivery(RouterError):
    """No delivery has that id."""

    message = "No delivery was found with that id"


class SubmissionKeyReused(RouterError):
    """A submission key (an API client's Idempotency-Key) came back with a different
    submission from the one first sent with it."""

    message = "That submission key was already used for a different submission"
