"""The staff audit: every action counter staff, operators and caseworkers take, appended
to Redis streams.

Each entry says who, when, at which branch, on which case, and what. It is written to
two append-only streams in one transaction: the branch's (its manager reads it), or for
operators and caseworkers, who have no branch, the operations stream; and the case's
(the citizen's "what we shared" shows who touched their case).
Entries carry references and staff user names, never a citizen's personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from redis.client import Pipeline

from router import keys

# What a counter action is called in the audit.
COUNTER_ACTIONS = (
    "signed_in",
    "sign_in_refused",
    "sign_in_locked",
    "sign_in_unlocked",
    "viewed_case",
    "served_from_another_branch",
    "serve_refused",
    "identity_checked",
    "task_completed",
    "submitted_on_behalf",
    "branch_changed",
    "viewed_audit",
)
# What operators and caseworkers do (router.assisted.backoffice).
BACK_OFFICE_ACTIONS = (
    "replayed_delivery",
    "viewed_flagged_case",
    "contacted_citizen",
    "reassigned_branch",
    "closed_follow_up",
)


@dataclass(frozen=True)
class Entry:
    id: str
    at: str
    action: str
    staff: str
    branch: str
    case: str
    detail: str


def record(
    redis: Redis | Pipeline,
    action: str,
    *,
    staff: str,
    branch: str,
    case: str = "",
    detail: str = "",
) -> None:
    """Append one entry to the branch's stream and, for a case, the case's stream."""
    if action not in COUNTER_ACTIONS + BACK_OFFICE_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    fields = {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "action": action,
        "staff": staff,
        "branch": branch,
        "case": case,
        "detail": detail,
    }
    pipe = redis if isinstance(redis, Pipeline) else redis.pipeline(transaction=True)
    stream = keys.branch_audit(branch) if branch else keys.OPERATIONS_AUDIT
    pipe.xadd(stream, fields)  # type: ignore[arg-type]
    pipe.sadd(keys.AUDIT_STREAMS, stream)  # for the purge to trim
    if case:
        pipe.xadd(keys.case_audit(case), fields)  # type: ignore[arg-type]
    if pipe is not redis:
        pipe.execute()


ACTIONS = COUNTER_ACTIONS + BACK_OFFICE_ACTIONS


def _entries(raw: list[tuple[bytes | str, dict[bytes | str, bytes | str]]]) -> list[Entry]:
    def text(value: bytes | str) -> str:
        return value.decode() if isinstance(value, bytes) else value

    entries = []
    for entry_id, fields in raw:
        data = {text(k): text(v) for k, v in fields.items()}
        entries.append(
            Entry(
                id=text(entry_id),
                at=data["at"],
                action=data["action"],
                staff=data["staff"],
                branch=data["branch"],
                case=data.get("case", ""),
                detail=data.get("detail", ""),
            )
        )
    return entries


def for_branch(redis: Redis, branch: str, count: int = 200) -> list[Entry]:
    """The branch's latest entries, newest first."""
    return _entries(redis.xrevrange(keys.branch_audit(branch), count=count))  # type: ignore[arg-type]


def for_operations(redis: Redis, count: int = 200) -> list[Entry]:
    """The operators' and caseworkers' latest entries, newest first."""
    return _entries(redis.xrevrange(keys.OPERATIONS_AUDIT, count=count))  # type: ignore[arg-type]


def for_case(redis: Redis, ref: str) -> list[Entry]:
    """Every counter action on one case, oldest first."""
    return _entries(redis.xrange(keys.case_audit(ref)))  # type: ignore[arg-type]
