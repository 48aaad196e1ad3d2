"""Which cases this browser may see: those whose reference it proved it holds, with the
secret from the confirmation link or with a date of birth given in the case.

The proof is remembered in the server-side session, so the status page's live updates
(htmx) and later visits in the same session need no secret in the address.
"""

from __future__ import annotations

from flask import session

SEEN = "cases"


def grant(ref: str) -> None:
    """Let this session see case ``ref``."""
    seen: list[str] = session.setdefault(SEEN, [])
    if ref not in seen:
        seen.append(ref)
        del seen[:-20]  # a session needs only its recent cases
        session.modified = True


def revoke(ref: str) -> None:
    """This session may no longer see case ``ref`` ("Sign out of this report")."""
    seen: list[str] = session.get(SEEN, [])
    if ref in seen:
        seen.remove(ref)
        session.modified = True


def allowed(ref: str) -> bool:
    return ref in session.get(SEEN, [])
