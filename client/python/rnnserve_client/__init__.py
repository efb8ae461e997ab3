"""Python client of rnnserve: Classify, and exactly-once streaming sessions.

    import numpy as np
    from rnnserve_client import Client

    client = Client("127.0.0.1:50051")
    with client.session("sine_rnn") as session:
        y = session.send(np.sin(np.arange(10, dtype=np.float32))[:, None])
"""
from .client import (Chunk, Classification, ClassScore, Client, ModelInfo,
                     RepositoryModel, TlsConfig, VersionStatus)
from .errors import (Aborted, DeadlineExceeded, FailedPrecondition,
                     InvalidArgument, NotFound, PositionMismatch,
                     ResourceExhausted, RnnserveError, SessionNotFound,
                     SessionTakenOver, Unauthenticated, Unavailable,
                     Unimplemented)
from .retry import RetryPolicy
from .session import Session
from .text import Tokenizer

__all__ = [
    "Aborted", "Chunk", "Classification", "ClassScore", "Client", "DeadlineExceeded",
    "FailedPrecondition", "InvalidArgument", "ModelInfo", "NotFound",
    "PositionMismatch", "RepositoryModel", "ResourceExhausted",
    "RetryPolicy", "RnnserveError", "Session", "SessionNotFound",
    "SessionTakenOver", "TlsConfig", "Tokenizer", "Unauthenticated",
    "Unavailable",
    "Unimplemented", "VersionStatus",
]
