"""Typed errors of the rnnserve client.

Every failed call raises a subclass of RnnserveError carrying the gRPC status
code and the server's message, which names the offending field.
"""
import grpc

# Trailing metadata of FAILED_PRECONDITION answers to a chunk sent from the
# wrong position: the session's real position, a decimal number.
POSITION_METADATA = "rnnserve-session-position"
TAKEN_OVER = "session taken over"


class RnnserveError(Exception):
    """Base of every error this package raises for a failed call."""

    def __init__(self, message, code=None, details=""):
        super().__init__(message)
        self.code = code  # grpc.StatusCode, or None for client-side errors.
        self.details = details


class InvalidArgument(RnnserveError):
    """A malformed request (INVALID_ARGUMENT); the message names the field."""


class NotFound(RnnserveError):
    """An unknown model (NOT_FOUND)."""


class SessionNotFound(NotFound):
    """An unknown, ended or expired session, or one another bearer token
    owns (NOT_FOUND)."""


class FailedPrecondition(RnnserveError):
    """A call the model or session cannot take now (FAILED_PRECONDITION),
    e.g. Classify on a regression model."""


class PositionMismatch(FailedPrecondition):
    """A chunk sent from another position than the session's. `.position` is
    the session's real position (None if the server did not say)."""

    def __init__(self, message, code=None, details="", position=None):
        super().__init__(message, code, details)
        self.position = position


class SessionTakenOver(RnnserveError):
    """Another call presented this session's token and took it over
    (ABORTED "session taken over"); this session object's chunk was not
    applied. Not retried: the session now belongs to the other caller."""


class ResourceExhausted(RnnserveError):
    """A queue, the session store or a quota is full (RESOURCE_EXHAUSTED)."""


class Unavailable(RnnserveError):
    """The server cannot be reached or is shutting down (UNAVAILABLE), after
    the retries the client was configured for."""


class DeadlineExceeded(RnnserveError):
    """No answer within the timeout (DEADLINE_EXCEEDED), after retries."""


class Aborted(RnnserveError):
    """ABORTED for another reason than a take-over, after retries."""


class Unauthenticated(RnnserveError):
    """A missing or wrong bearer token, or admin token for the repository
    methods (UNAUTHENTICATED)."""


class Unimplemented(RnnserveError):
    """A service the server does not offer (UNIMPLEMENTED): the repository
    methods on a server started without admin tokens
    (--admin-tokens-file)."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}


def _trailing_position(error):
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:  # Not every RpcError is a call.
        return None
    for key, value in trailers:
        if key == POSITION_METADATA:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def is_taken_over(error):
    return (error.code() == grpc.StatusCode.ABORTED
            and TAKEN_OVER in (error.details() or ""))


def from_rpc_error(error, session_call=False):
    """The typed error for a grpc.RpcError. `session_call` tells a NOT_FOUND
    about the session from one about the model."""
    code = error.code()
    details = error.details() or ""
    message = f"{code.name}: {details}"
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        position = _trailing_position(error)
        if position is not None:
            return PositionMismatch(message, code, details, position)
    if code == grpc.StatusCode.NOT_FOUND and session_call and \
            details.startswith("session_token"):
        return SessionNotFound(message, code, details)
    if is_taken_over(error):
        return SessionTakenOver(message, code, details)
    return _BY_CODE.get(code, RnnserveError)(message, code, details)
