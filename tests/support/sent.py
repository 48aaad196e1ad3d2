"""A report sent, as a test keeps it to find it again."""

from __future__ import annotations

from dataclasses import dataclass

from router import reference
from router.assisted import branches


@dataclass(frozen=True)
class Sent:
    """A report sent: its reference, the secret of the citizen's status link and the
    branch it waits at (empty when it waits at none, or a test did not ask)."""

    ref: str  # canonical, ACDEFGHJK
    secret: str
    branch: str = ""

    @property
    def display(self) -> str:
        """The reference as a person reads it: ACDE-FGHJ-K."""
        return reference.display(self.ref)

    @property
    def status_link(self) -> str:
        """Path and query of the citizen's status link: /status/<REF>?s=<secret>."""
        return f"/status/{self.display}?s={self.secret}"

    @property
    def page(self) -> str:
        """The report's page at the counter."""
        return f"/counter/cases/{self.display}"

    @property
    def branch_name(self) -> str:
        return branches.branch(self.branch).name
