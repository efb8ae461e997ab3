"""Session: a regression model's sequence sent chunk by chunk, exactly once.

The client tracks the session's position (steps run since it started or was
last reset) and sends every chunk with expected_first_step set to it. When a
chunk gets no answer (UNAVAILABLE, DEADLINE_EXCEEDED, a broken stream,
ABORTED other than a take-over), the session reconnects, with the session
token, after a jittered exponential backoff, and resends the same chunk from
the same position: if the server had applied it, it answers it again from
its stored answer (`replayed`); otherwise it runs it now. No chunk is ever
applied twice. Retries are bounded by the Client's RetryPolicy.

Not thread-safe: one thread uses a Session at a time.
"""
import queue
import threading
import time
from typing import Iterable, Iterator, Optional

import grpc
import numpy as np

from . import errors
from .client import Chunk, ClassScore, as_ids, pb
from .retry import is_retryable


class _StreamBroken(Exception):
    """The stream ended without answering a chunk."""


class _Stream:
    """One Regress call, used one chunk at a time."""

    def __init__(self, client):
        self._requests = queue.Queue()
        self._expired = False
        # No deadline for the stream itself: each chunk has its own (below).
        self._call = client.stub.Regress(iter(self._requests.get, None),
                                         metadata=client.metadata)

    def exchange(self, request, timeout):
        """Sends one request and waits up to `timeout` s for its answer.
        Past it, the call is cancelled; that raises DEADLINE_EXCEEDED."""
        self._requests.put(request)
        timer = threading.Timer(timeout, self._expire)
        timer.daemon = True
        timer.start()
        try:
            return next(self._call)
        except StopIteration:
            raise _StreamBroken() from None
        finally:
            timer.cancel()

    @property
    def expired(self):
        return self._expired

    def _expire(self):
        self._expired = True
        self._call.cancel()

    def close(self):
        self._requests.put(None)
        self._call.cancel()


class _Deadline(grpc.RpcError):
    """A chunk not answered in time on a stream, as a unary call's error."""

    def code(self):
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self):
        return "no answer to the chunk within the client's timeout"

    def trailing_metadata(self):
        return ()


class _Broken(_Deadline):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "the stream ended without answering the chunk"


class Session:
    """A session of a regression model; open it with Client.session().

    send(values) runs a chunk [steps, input_size] and returns its outputs
    [steps, output_size]; a token-input model's chunk is send(token_ids=
    ids), one id per step, or, with a tokenizer, send(text="..."), one step
    per character. send_chunk() answers with the steps' best
    classes too (top_k, for a model with an output activation). position is the session's position, token its
    token (None until the first chunk of a new session is answered). As a
    context manager it ends the session on a normal exit; after an
    exception it only closes its stream, leaving the session resumable with
    its token until the server's idle TTL.
    """

    def __init__(self, client, model, token=None, unary=False):
        self._client = client
        self._model = model
        self._unary = unary
        self._stream: Optional[_Stream] = None
        self.token: Optional[str] = token or None
        self.ended = False
        self.retries = 0  # Tries that failed and were retried.
        self.replays = 0  # Answers the server replayed after a retry.
        self.position = 0
        if self.token is not None:
            self.sync()

    # The public operations.

    def send(self, values=None, reset: bool = False, *,
             token_ids=None, text: Optional[str] = None) -> np.ndarray:
        """Runs one chunk from the session's position (from 0 with reset)
        and returns its outputs, float32 [steps, output_size]. The chunk is
        `values`, [steps, input_size], or for a token-input model
        `token_ids`, a 1-D sequence of integer ids, one per step, or `text`,
        a str of one step per character, encoded with the model's tokenizer
        (Client.encode_text; ValueError without one)."""
        return self.send_chunk(values, reset, token_ids=token_ids,
                               text=text).outputs

    def send_chunk(self, values=None, reset: bool = False, *,
                   token_ids=None, text: Optional[str] = None,
                   top_k: int = 0) -> Chunk:
        """send(), answered as a Chunk: the outputs and, with top_k > 0 (a
        model with an output activation, ModelInfo.output_activation),
        each step's top_k classes, most probable first."""
        if text is not None:
            if values is not None or token_ids is not None:
                raise ValueError("send: give one of values, token_ids or "
                                 "text")
            token_ids = self._client.encode_text(self._model, text)
        fields = self._items(values, token_ids)
        response = self._chunk(**fields, reset_state=reset, top_k=top_k)
        steps = response.steps
        outputs = np.array(response.outputs, dtype=np.float32)
        if steps == 0:
            outputs = outputs.reshape(0, self._output_size())
        else:
            outputs = outputs.reshape(steps, -1)
        step_top = [[ClassScore(t.index, t.label, t.probability)
                     for t in step.top] for step in response.step_top]
        return Chunk(outputs=outputs, step_top=step_top,
                     first_step=response.first_step,
                     replayed=response.replayed)

    def stream(self, chunks: Iterable, *, tokens: bool = False,
               text: bool = False) -> Iterator[np.ndarray]:
        """Sends each chunk in turn, yielding each one's outputs; with
        tokens=True each chunk is token ids (send(token_ids=chunk)), with
        text=True a str (send(text=chunk))."""
        for chunk in chunks:
            if text:
                yield self.send(text=chunk)
            elif tokens:
                yield self.send(token_ids=chunk)
            else:
                yield self.send(chunk)

    @staticmethod
    def _items(values, token_ids):
        """The request fields of a chunk of values or of token ids."""
        if (values is None) == (token_ids is None):
            raise ValueError("send: give either values or token_ids, not "
                             "both or neither")
        if token_ids is not None:
            ids = as_ids(token_ids, "token_ids")
            return dict(steps=len(ids), token_ids=ids.tolist())
        chunk = np.asarray(values, dtype=np.float32)
        if chunk.ndim != 2:
            hint = " (token ids for a token-input model: token_ids=)" \
                if chunk.ndim == 1 else ""
            raise ValueError(f"values: expected a 2-D array [steps, "
                             f"input_size], got shape {chunk.shape}{hint}")
        return dict(steps=chunk.shape[0], values=chunk.reshape(-1))

    def sync(self) -> int:
        """Asks the server for the session's position, and takes it as the
        one to send from (after a PositionMismatch, for instance)."""
        self._check_open()
        response = self._exchange(self._request(steps=0), expected=None)
        self.position = response.first_step
        return self.position

    def reset(self):
        """Zeroes the session's state; its position becomes 0."""
        self._chunk(steps=0, reset_state=True)

    def end(self):
        """Ends the session: the server drops its state and its token."""
        if self.ended:
            return
        if self.token is None:  # Never started: nothing on the server.
            self.ended = True
            self.close()
            return
        retries = self.retries
        try:
            self._chunk(steps=0, end_session=True)
        except errors.SessionNotFound:
            if self.retries == retries:
                raise
            # An earlier try of this end() ended it; its answer was lost.
        self.ended = True
        self.close()

    def close(self):
        """Closes the stream, if any; the session stays resumable."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def __del__(self):
        # Unblocks the stream's request thread of a forgotten Session.
        if getattr(self, "_stream", None) is not None:
            self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.end()
        else:
            self.close()

    # The exchange and its retries.

    def _check_open(self):
        if self.ended:
            raise errors.RnnserveError("session: already ended")

    def _request(self, **fields):
        return pb.RegressRequest(model=self._model,
                                 session_token=self.token or "", **fields)

    def _chunk(self, **fields):
        self._check_open()
        expected = self.position
        response = self._exchange(self._request(**fields,
                                                expected_first_step=expected),
                                  expected)
        self.position = response.first_step + response.steps
        if response.session_ended:
            self.ended = True
            self.close()
        return response

    def _exchange(self, request, expected):
        """Sends `request` until it is answered or a try fails for good. A
        retry resends the same request, with the same expected_first_step,
        on a new stream (or call) that presents the session token."""
        attempt = 0
        retry = self._client.retry
        while True:
            try:
                response = self._try(request)
                break
            except grpc.RpcError as e:
                self.close()
                attempt += 1
                if not is_retryable(e) or attempt >= retry.max_attempts:
                    raise errors.from_rpc_error(e, session_call=True) \
                        from None
            self.retries += 1
            time.sleep(retry.delay(attempt))
        if response.session_token:
            self.token = response.session_token
        if response.replayed:
            self.replays += 1
        reset = request.reset_state
        if expected is not None and response.first_step != \
                (0 if reset else expected):
            raise errors.RnnserveError(
                f"session: the server answered a chunk at step "
                f"{response.first_step}, sent from {expected}")
        return response

    def _try(self, request):
        timeout = self._client.timeout
        if self._unary:
            return self._client.stub.RegressChunk(
                request, metadata=self._client.metadata, timeout=timeout)
        if self._stream is None:
            self._stream = _Stream(self._client)
        stream = self._stream
        try:
            return stream.exchange(request, timeout)
        except _StreamBroken:
            raise _Broken() from None
        except grpc.RpcError as e:
            if stream.expired and e.code() == grpc.StatusCode.CANCELLED:
                raise _Deadline() from None
            raise

    def _output_size(self):
        return self._client.model(self._model).output_size
