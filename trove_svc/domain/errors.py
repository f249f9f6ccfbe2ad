"""The domain's exceptions: a small tree, no side effects, no HTTP.

The API maps these to HTTP responses in one place (`trove_svc.api.errors`).
"""

from __future__ import annotations


class TroveSvcError(Exception):
    """Base of every error the service reports to a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(TroveSvcError):
    """The request is malformed or names something invalid."""


class Unauthorized(TroveSvcError):
    """No valid credentials."""


class Forbidden(TroveSvcError):
    """Valid credentials, but not allowed to do this."""


class NotFound(TroveSvcError):
    """The resource does not exist, or is not visible to this project."""


class Conflict(TroveSvcError):
    """The resource is busy or in a state that forbids this."""


class OverLimit(TroveSvcError):
    """A quota or size limit would be exceeded."""


class Unprocessable(TroveSvcError):
    """Well-formed, but cannot be carried out as asked."""


class NotImplementedYet(TroveSvcError):
    """The request is valid Trove, but trove-svc does not offer it yet."""


class FeatureNotBuilt(TroveSvcError):
    """A whole route Trove has and trove-svc does not build yet (501, naming the feature)."""


class UnsupportedMediaType(TroveSvcError):
    """A body that is not JSON where JSON is expected."""


class ServiceUnavailable(TroveSvcError):
    """A part the request needs (RabbitMQ, a guest agent) did not answer in time."""
