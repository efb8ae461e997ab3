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
from .text import Tokenizer

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
    # Where this version is in its life: "loading", "ready", "draining",
    # "unloaded", "failed" ("unspecified" from a server that does not say).
    state: str = "unspecified"
    # A draining version: the sessions still running on it.
    sessions: int = 0
    # Every version the server holds, oldest first, each described alike
    # (its own `versions` empty); the fields above describe the newest
    # ready one, which answers calls that name no version.
    versions: List["ModelInfo"] = dataclasses.field(default_factory=list)
    # What a step's input is: "values" (input_size floats: `sequences`,
    # send(values)) or "token_ids" (one id in [0, vocabulary_size) per step,
    # for a model with an embedding: token_ids=); "unspecified" from a
    # server that does not say (it reads values).
    input_kind: str = "unspecified"
    vocabulary_size: int = 0  # "token_ids": ids are in [0, vocabulary_size).
    # Classification: what the head reads, "last_output", "final_state",
    # "mean" or "max"; empty for regression.
    readout: str = ""
    # An MLP head's modules in order ("linear:64", "relu", "dropout", ...);
    # empty for the single linear head.
    head: List[str] = dataclasses.field(default_factory=list)
    # Regression: "none", "sigmoid" or "softmax", applied to every step's
    # outputs (then top_k gives each step's best classes); empty for
    # classification.
    output_activation: str = ""
    # A token-input model's tokenizer (config "tokenizer"), which turns
    # text into its token ids (text=, Client.encode_text); None without one.
    tokenizer: Optional[Tokenizer] = None

    @classmethod
    def from_proto(cls, m):
        return cls(name=m.name, version=m.version,
                   cell=pb.Cell.Name(m.cell).removeprefix("CELL_").lower(),
                   task=pb.Task.Name(m.task).removeprefix("TASK_").lower(),
                   input_size=m.input_size, hidden_size=m.hidden_size,
                   num_layers=m.num_layers, bidirectional=m.bidirectional,
                   output_size=m.output_size, labels=list(m.labels),
                   description=m.description, max_steps=m.max_steps,
                   max_sequences_per_request=m.max_sequences_per_request,
                   state=state_name(m.state), sessions=m.sessions,
                   versions=[cls.from_proto(v) for v in m.versions],
                   input_kind=_enum_name(pb.InputKind, m.input_kind,
                                         "INPUT_KIND_", "input kind"),
                   vocabulary_size=m.vocabulary_size, readout=m.readout,
                   head=list(m.head), output_activation=m.output_activation,
                   tokenizer=Tokenizer.from_proto(m.tokenizer)
                   if m.HasField("tokenizer") else None)


def _enum_name(enum, value, prefix, what):
    try:
        return enum.Name(value).removeprefix(prefix).lower()
    except ValueError:  # A newer server's value.
        return f"{what} {value}"


def state_name(state):
    """"ready" for VERSION_STATE_READY, and so on; "state N" for a state
    this client does not know (a newer server's)."""
    try:
        name = pb.VersionState.Name(state)
    except ValueError:
        return f"state {state}"
    return name.removeprefix("VERSION_STATE_").lower()


@dataclasses.dataclass
class VersionStatus:
    """One version as the repository service reports it."""
    version: str
    state: str  # As ModelInfo.state.
    sessions: int  # A draining version: the sessions still running on it.
    reason: str  # A failed version: why; an unloaded one: why it was.


@dataclasses.dataclass
class RepositoryModel:
    """A model folder of the server's repository and its versions, oldest
    first. unloaded_by_request: UnloadModel unloaded it, and rescans leave
    it so until load_model names it."""
    name: str
    versions: List[VersionStatus]
    unloaded_by_request: bool

    @classmethod
    def from_proto(cls, m):
        return cls(name=m.name, unloaded_by_request=m.unloaded_by_request,
                   versions=[VersionStatus(v.version, state_name(v.state),
                                           v.sessions, v.reason)
                             for v in m.versions])


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


def _admin(token):
    if not token:
        raise ValueError("admin_token: expected one of the server's admin "
                         "tokens (--admin-tokens-file), got none")
    return (("authorization", f"Bearer {token}"),)


@dataclasses.dataclass
class Chunk:
    """A session chunk's answer (Session.send_chunk)."""
    outputs: np.ndarray  # float32 [steps, output_size]
    # Per step, its top_k classes, most probable first (the model's output
    # activation's probabilities); empty unless top_k was asked for.
    step_top: List[List[ClassScore]]
    first_step: int  # The chunk's first step in the session.
    replayed: bool  # The server's stored answer of a chunk it had applied.


def as_token_ids(sequences, what="token_ids"):
    """A list of int64 [steps] arrays from a list of 1-D integer sequences
    or one 2-D integer array [count, steps]."""
    if isinstance(sequences, np.ndarray) and sequences.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D integer array [count, "
                         f"steps], got shape {sequences.shape}")
    return [as_ids(s, f"{what}[{i}]") for i, s in enumerate(sequences)]


def as_ids(ids, what):
    """One sequence of token ids as an int64 [steps] array."""
    a = np.asarray(ids)
    if a.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence of token ids "
                         f"[steps], got shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise ValueError(f"{what}: expected integer token ids, got "
                         f"{a.dtype}")
    return a.astype(np.int64)


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
            hint = " (token ids for a token-input model: token_ids=)" \
                if a.ndim == 1 else ""
            raise ValueError(f"sequences[{i}]: expected a 2-D array [steps, "
                             f"input_size], got shape {a.shape}{hint}")
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
        self.repository = pb_grpc.RepositoryStub(self.channel)
        self._models = {}

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, method, request, session_call=False, metadata=None):
        """Runs a unary call with the retry policy: `method` is a stub
        method; `metadata` replaces the client's (its bearer token). Raises
        a typed RnnserveError."""
        attempt = 0
        metadata = self.metadata if metadata is None else metadata
        while True:
            try:
                return method(request, metadata=metadata,
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

    def encode_text(self, model: str, text: str,
                    what: str = "text") -> np.ndarray:
        """The token ids of `text` under `model`'s tokenizer
        (ModelInfo.tokenizer), int64 [characters]: one id per character,
        as rnnctl's --text encodes it (see rnnserve_client.text). Raises
        ValueError, naming `what`, when the model has no tokenizer or the
        text cannot be encoded (naming the character and its position)."""
        info = self.model(model)
        if info.tokenizer is None:
            instead = ("give its token ids with token_ids="
                       if info.input_kind == "token_ids"
                       else "it reads values, not token ids")
            raise ValueError(f"{what}: model {model!r} has no tokenizer "
                             f"(config \"tokenizer\"); {instead}")
        return info.tokenizer.encode(text, what)

    def classify(self, model: str,
                 sequences: Union[np.ndarray, Sequence, None] = None,
                 top_k: int = 1, *,
                 token_ids: Union[np.ndarray, Sequence, None] = None,
                 text: Optional[Sequence[str]] = None
                 ) -> List[Classification]:
        """Classifies whole sequences, each a [steps, input_size] array
        (lengths may differ), or one [count, steps, input_size] array.
        A token-input model (ModelInfo.input_kind "token_ids") takes
        token_ids= instead: each sequence a 1-D list or array of integer
        ids (lengths may differ), or one [count, steps] integer array; a
        model with a tokenizer also takes text=, a list of strings, each one
        sequence of one step per character (encode_text).
        Returns one Classification per sequence, in order."""
        if sum(x is not None for x in (sequences, token_ids, text)) != 1:
            raise ValueError("classify: give one of sequences (values), "
                             "token_ids or text")
        if text is not None:
            if isinstance(text, str):
                raise ValueError("text: expected a list of strings, one per "
                                 "sequence, got one str; give text=[...]")
            token_ids = [self.encode_text(model, t, f"text[{i}]")
                         for i, t in enumerate(text)]
        if token_ids is not None:
            items = [pb.Sequence(steps=len(ids), token_ids=ids.tolist())
                     for ids in as_token_ids(token_ids)]
        else:
            items = [pb.Sequence(steps=s.shape[0], values=s.reshape(-1))
                     for s in as_sequences(sequences)]
        request = pb.ClassifyRequest(model=model, top_k=top_k,
                                     sequences=items)
        response = self.call(self.stub.Classify, request)
        return [Classification(
            logits=np.array(r.logits, dtype=np.float32),
            probabilities=np.array(r.probabilities, dtype=np.float32),
            top=[ClassScore(t.index, t.label, t.probability) for t in r.top])
            for r in response.results]

    # The repository service (rnnserve.v1.Repository). The server offers it
    # only when started with --admin-tokens-file: each call takes one of
    # those admin tokens, sent instead of the client's bearer token. A
    # server without admin tokens raises Unimplemented; a refused token,
    # Unauthenticated.

    def repository_index(self, admin_token: str) -> List[RepositoryModel]:
        """Every model folder of the repository, by name, with every version
        the server holds or tried to load."""
        response = self.call(self.repository.RepositoryIndex,
                             pb.RepositoryIndexRequest(),
                             metadata=_admin(admin_token))
        return [RepositoryModel.from_proto(m) for m in response.models]

    def load_model(self, model: str, admin_token: str) -> RepositoryModel:
        """Rescans `model`'s folder now (loads new and changed versions,
        unloads those its policy no longer selects; ends an earlier
        unload_model) and returns the model. A version that fails to load
        raises (FailedPrecondition or the like, naming the version and the
        reason); the versions already loaded keep serving."""
        response = self.call(self.repository.LoadModel,
                             pb.LoadModelRequest(model=model),
                             metadata=_admin(admin_token))
        return RepositoryModel.from_proto(response.model)

    def unload_model(self, model: str, admin_token: str) -> RepositoryModel:
        """Unloads every version of `model` (one with sessions drains
        first); rescans leave it unloaded until load_model. Returns the
        model, its versions draining or unloaded."""
        response = self.call(self.repository.UnloadModel,
                             pb.UnloadModelRequest(model=model),
                             metadata=_admin(admin_token))
        return RepositoryModel.from_proto(response.model)

    def session(self, model: str, token: Optional[str] = None,
                unary: bool = False):
        """A streaming session of a regression model: a new one, or, with
        `token`, the existing one, resumed where it is (which takes it over
        from any call that holds it). unary=True sends each chunk with
        RegressChunk instead of holding a Regress stream."""
        from .session import Session
        return Session(self, model, token=token, unary=unary)
