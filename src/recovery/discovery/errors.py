"""
The exceptions raised by service lookups.

An unknown service is a programming or configuration mistake, so it is a
`LookupError`; a known service with no healthy endpoint is a rejection (no
call was made) and says when an ejected endpoint comes back, if it knows.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RecoveryError, RejectedError

__all__ = ["NoHealthyEndpointError", "UnknownServiceError"]


class UnknownServiceError(RecoveryError, LookupError):
    """
    No service of this name is registered.
    """

    def __init__(self, service: str) -> None:
        super().__init__(f"no service named {service!r} is registered")
        self.service = service


class NoHealthyEndpointError(RejectedError):
    """
    The service, and every service it fails over to, has no healthy endpoint.

    `service` is the service asked for, `tried` every service looked at, in
    order, and `retry_after` the seconds until the first ejected endpoint
    returns (`None` when no endpoint is merely ejected).
    """

    def __init__(
        self,
        service: str,
        *,
        tried: Sequence[str] = (),
        retry_after: float | None = None,
    ) -> None:
        tried = tuple(tried) or (service,)
        names = ", ".join(repr(name) for name in tried)
        when = "" if retry_after is None else f"; one returns in {retry_after:.3f} s"
        super().__init__(
            f"no healthy endpoint in {names}{when}", retry_after=retry_after
        )
        self.service = service
        self.tried = tried
