"""Client: a channel to one rnnserve (or a balancer in front of several).

A Client is safe to use from several threads (gRPC channels are); a Session
it opens is not.
"""
import dataclasses
import time
from typing import List, Optional, Sequence, Union

import grpc
import numpy as np

from . import errors
from .retry import RetryPolicy, is_retryable

try:
    from ._pb import inference_pb2 as pb
    from ._pb import inference_pb2_grpc as pb_grpc
except ImportError as e:  # pragma: no cover - a source checkout, not built.
    raise ImportError(
        "rnnserve_client: the generated gRPC modules are missing; install the "
        "package (pip install client/python), which generates them from "
        "proto/rnnserve/v1/inference.proto") from e


@dataclasses.dataclass
class TlsConfig:
    """TLS for the channel. Each field is a path or the PEM bytes: `ca`
    verifies the server (None: the system's roots); `cert` and `key`, both or
    neither, are the client certificate for mutual TLS."""
    ca: Union[str, bytes, None] = None
    cert: Union[str, bytes, None] = None
    key: Union[str, bytes, None] = None

    def credentials(self):
        if (self.cert is None) != (self.key is None):
            raise ValueError("TlsConfig: give both cert and key, or neither")
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.ca), private_key=_pem(self.key),
            certificate_chain=_pem(self.cert))


def _pem(value):
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as f:
        return f.read()


@dataclasses.dataclass
class ModelInfo:
    """What a client needs to call a model (the proto's ModelInfo)."""
    name: str
    version: str
    cell: str  # "lstm", "gru", "rnn_tanh", "rnn_relu"
    task: str  # "classification" or "regression"
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    output_size: int
    labels: List[str]
    description: str
    max_steps: int
    max_sequences_per_request: int

    @classmethod
    def from_proto(cls, m):
        return cls(name=m.name, version=m.version,
                   cell=pb.Cell.Name(m.cell).removeprefix("CELL_").lower(),
                   task=pb.Task.Name(m.task).removeprefix("TASK_").lower(),
                   input_size=m.input_size, hidden_size=m.hidden_size,
                   num_layers=m.num_layers, bidirectional=m.bidirectional,
                   output_size=m.output_size, labels=list(m.labels),
                   description=m.description, max_steps=m.max_steps,
                   max_sequences_per_request=m.max_sequences_per_request)


@dataclasses.dataclass
class ClassScore:
    index: int
    label: str  # Empty when the model has no labels.
    probability: float


@dataclasses.dataclass
class Classification:
    """The result for one sequence: the head's outputs at its last step."""
    logits: np.ndarray  # float32 [output_size]
    probabilities: np.ndarray  # float32 [output_size], softmax(logits)
    top: List[ClassScore]  # top_k classes, most probable first

    @property
    def top_class(self):
        return self.top[0].index


def as_sequences(sequences):
    """A list of float32 [steps, input_size] arrays from a list of 2-D
    arrays or one 3-D array [count, steps, input_size]."""
    if isinstance(sequences, np.ndarray):
        if sequences.ndim != 3:
            raise ValueError(f"sequences: expected a 3-D array [count, steps, "
                             f"input_size], got shape {sequences.shape}")
        return [np.asarray(s, dtype=np.float32) for s in sequences]
    out = []
    for i, s in enumerate(sequences):
        a = np.asarray(s, dtype=np.float32)
        if a.ndim != 2:
            raise ValueError(f"sequences[{i}]: expected a 2-D array [steps, "
                             f"input_size], got shape {a.shape}")
        out.append(a)
    return out


class Client:
    """A connection to rnnserve at `address` ("host:port").

    tls: None for plaintext, or a TlsConfig. token: a bearer token, sent as
    "authorization: Bearer TOKEN" on every call. timeout: seconds one try of
    a call may take. retry: how calls that got no answer are retried
    (RetryPolicy). options: extra gRPC channel options.
    """

    def __init__(self, address, tls: Optional[TlsConfig] = None,
                 token: Optional[str] = None, timeout: float = 30.0,
                 retry: Optional[RetryPolicy] = None, options=()):
        self.address = address
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.metadata = (("authorization", f"Bearer {token}"),) if token \
            else ()
        # A broken connection is retried by gRPC after its reconnect
        # backoff; keep it no longer than ours, so that a restarted server
        # is found again as soon as the client retries. (Not
        # grpc.min_reconnect_backoff_ms: gRPC takes it as the connection
        # attempt's timeout too.)
        backoff_ms = max(100, int(self.retry.max_backoff * 1000))
        opts = [("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", backoff_ms),
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20), *options]
        self.channel = (grpc.secure_channel(address, tls.credentials(), opts)
                        if tls is not None
                        else grpc.insecure_channel(address, opts))
        self.stub = pb_grpc.InferenceStub(self.channel)
        self._models = {}

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, method, request, session_call=False):
        """Runs a unary call with the retry policy: `method` is a stub
        method. Raises a typed RnnserveError."""
        attempt = 0
        while True:
            try:
                return method(request, metadata=self.metadata,
                              timeout=self.timeout)
            except grpc.RpcError as e:
                attempt += 1
                if not is_retryable(e) or attempt >= self.retry.max_attempts:
                    raise errors.from_rpc_error(e, session_call) from None
            time.sleep(self.retry.delay(attempt))

    def models(self) -> List[ModelInfo]:
        """Every loaded model, sorted by name."""
        response = self.call(self.stub.ListModels, pb.ListModelsRequest())
        return [ModelInfo.from_proto(m) for m in response.models]

    def model(self, name) -> ModelInfo:
        """One model's description (cached per Client)."""
        if name not in self._models:
            m = self.call(self.stub.GetModel, pb.GetModelRequest(model=name))
            self._models[name] = ModelInfo.from_proto(m)
        return self._models[name]

    def classify(self, model: str, sequences: Union[np.ndarray, Sequence],
                 top_k: int = 1) -> List[Classification]:
        """Classifies whole sequences, each a [steps, input_size] array
        (lengths may differ), or one [count, steps, input_size] array.
        Returns one Classification per sequence, in order."""
        seqs = as_sequences(sequences)
        request = pb.ClassifyRequest(model=model, top_k=top_k, sequences=[
            pb.Sequence(steps=s.shape[0], values=s.reshape(-1))
            for s in seqs])
        response = self.call(self.stub.Classify, request)
        return [Classification(
            logits=np.array(r.logits, dtype=np.float32),
            probabilities=np.array(r.probabilities, dtype=np.float32),
            top=[ClassScore(t.index, t.label, t.probability) for t in r.top])
            for r in response.results]

    def session(self, model: str, token: Optional[str] = None,
                unary: bool = False):
        """A streaming session of a regression model: a new one, or, with
        `token`, the existing one, resumed where it is (which takes it over
        from any call that holds it). unary=True sends each chunk with
        RegressChunk instead of holding a Regress stream."""
        from .session import Session
        return Session(self, model, token=token, unary=unary)
