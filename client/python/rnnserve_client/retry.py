"""When and how long the client waits before trying a call again."""
import dataclasses
import random

import grpc

from . import errors

# Codes after which a call may be resent: the server did not answer, and
# resending is safe (stateless calls; session chunks carry
# expected_first_step, so the server applies each at most once).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE,
                       grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.CANCELLED,
                       grpc.StatusCode.ABORTED})


@dataclasses.dataclass
class RetryPolicy:
    """Bounded retries with jittered exponential backoff.

    A call is tried at most `max_attempts` times. Before try n (n >= 1) the
    client sleeps a random time in [b/2, b], b = min(max_backoff,
    initial_backoff * multiplier ** (n - 1)) seconds.
    """
    max_attempts: int = 8
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError("max_attempts: at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff: not negative")

    def delay(self, attempt, rng=random):
        """Seconds to sleep before try `attempt` (1 for the first retry)."""
        bound = min(self.max_backoff,
                    self.initial_backoff * self.multiplier ** (attempt - 1))
        return rng.uniform(bound / 2, bound)


def is_retryable(error):
    """Whether a grpc.RpcError may be retried. A take-over is not: another
    caller holds the session now."""
    return error.code() in RETRYABLE and not errors.is_taken_over(error)
