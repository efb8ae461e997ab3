"""Reads an ONNX model into rnnserve's tensors (PyTorch state_dict names).

Accepted: what torch.onnx.export writes for the model rnnserve serves (see
docs/model-format.md): one input sequence (values, or integer token ids looked
up in an nn.Embedding: a Gather on a constant table), an ONNX LSTM, GRU or RNN node per
layer (uni- or bidirectional, with or without biases, batch_first or not),
and a Linear head (Gemm, or MatMul then Add) on the last step's output
(classification) or on every step (regression). Around them the exporter's
plumbing is understood: Transpose, Reshape, Squeeze, Gather/Slice of the last
step, and the Shape/ConstantOfShape arithmetic that makes the zero initial
states. Extra graph outputs that are the recurrent layers' final states are
allowed (the server carries the state itself).

Anything else raises OnnxImportError naming the node (its name) and its op
type, or the attribute that is not supported.

How: every value of the graph gets an abstract description, computed node by
node in the graph's (topological) order: a known constant, a zero tensor, a
value computed from shapes only, the input sequence or a recurrent layer's
output with named axes, or the head's output. A node is accepted only when
its inputs' descriptions fit one of the patterns above.

Needs Debian's python3-onnx (imported when a file is read).
"""

from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

import rnnserve_format as fmt

SUPPORTED = "rnnserve imports LSTM/GRU/RNN stacks with a Linear or MLP head"
MIN_OPSET = 10

# ONNX gate block order -> PyTorch's: for each PyTorch gate, its ONNX block.
# LSTM: ONNX i,o,f,c; PyTorch i,f,g(=c),o.  GRU: ONNX z,r,h; PyTorch r,z,n.
_GATE_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
# Ops that may compute shapes and zero states from shapes and constants.
_SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
              "ConstantOfShape", "Reshape", "Expand", "Identity", "Add", "Sub", "Mul",
              "Div", "Transpose"}
# ONNX TensorProto data types of integers (token ids): UINT8 .. INT64.
_INTEGER_TYPES = {2, 3, 4, 5, 6, 7, 12, 13}
_ZERO_PRESERVING = {"Slice", "Unsqueeze", "Squeeze", "Reshape", "Expand", "Gather",
                    "Transpose", "Cast", "Identity"}


class OnnxImportError(fmt.FormatError):
    """The ONNX model is not one rnnserve can import."""


# Abstract values -----------------------------------------------------------

@dataclass(frozen=True)
class Const:
    value: np.ndarray


@dataclass(frozen=True)
class Aux:
    """Computed from shapes and constants only; zeros when `zero`."""
    zero: bool = False


@dataclass(frozen=True)
class Tokens:
    """The graph's integer input, token ids, before the embedding lookup.

    axes: "x0"/"x1", the input's two axes (one is batch and one steps).
    """
    axes: tuple


@dataclass(frozen=True)
class Seq:
    """Data of the input sequence flowing through the model.

    axes: one label per axis: "x0"/"x1" (the input's first two axes, one is
      batch and one steps), "F" (features), "D" (direction), "H" (hidden),
      "last" (the last step, size 1), "O" (head outputs).
    stage: -1 the input; k the output of recurrent layer k; "matmul" the head
      without its bias; "head" the head with bias.
    last: the step axis was reduced to the last step.
    """
    axes: tuple
    stage: object
    last: bool = False
    directions: int = 1
    readout: str = "last_output"
    modules: int = 0  # Head modules (self.modules) applied; head values only.
    gelu: str = ""  # Inside an erf GELU: the last of its nodes seen.


@dataclass(frozen=True)
class State:
    """A recurrent layer's final state output (Y_h, Y_c) or a Concat of them.

    parts: for h states, the (layer, direction) of each entry along axis 0;
    None for c states or anything else.
    """
    parts: tuple = None


@dataclass(frozen=True)
class Part:
    """One entry of h states: the final state (batch, H) of (layer, direction)."""
    layer: int
    direction: int


def _name(node):
    return node.name or (node.output[0] if node.output else "(unnamed)")


def refuse(node, why=None):
    """Raises OnnxImportError naming the node, its op and, if given, why."""
    because = f"{why}; " if why else ""
    raise OnnxImportError(f"node {_name(node)} (op {node.op_type}) is not supported: "
                          f"{because}{SUPPORTED}")


def _attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


# The importer --------------------------------------------------------------

class _Importer:
    def __init__(self, model):
        from onnx import numpy_helper
        self.graph = model.graph
        self.values = {"": None}
        self.layers = {}  # layer index -> dict
        self.modules = []  # head modules in order: dicts with kind, node, weight, bias
        for init in self.graph.initializer:
            self.values[init.name] = Const(numpy_helper.to_array(init))
        inputs = [i for i in self.graph.input if i.name not in self.values]
        if len(inputs) != 1:
            raise OnnxImportError(
                f"the graph has {len(inputs)} inputs ({[i.name for i in inputs]}); rnnserve "
                "models take one, the sequence (export without initial states: the server "
                "starts from zeros and carries the state itself)")
        self.input_name = inputs[0].name
        self.embedding = None  # The embedding table, once its Gather is seen.
        tensor_type = inputs[0].type.tensor_type
        dims = tensor_type.shape.dim
        if tensor_type.elem_type in _INTEGER_TYPES:
            if len(dims) != 2:
                raise OnnxImportError(
                    f"graph input {self.input_name} holds integers (token ids) and has "
                    f"{len(dims)} axes; need 2 (batch, steps), looked up in an nn.Embedding")
            self.values[self.input_name] = Tokens(("x0", "x1"))
            return
        if len(dims) != 3:
            raise OnnxImportError(f"graph input {self.input_name} has {len(dims)} axes; "
                                  "need 3 (batch, steps, features), or 2 (batch, steps) of "
                                  "integer token ids for a model with an nn.Embedding")
        self.values[self.input_name] = Seq(("x0", "x1", "F"), -1)

    def get(self, node, index):
        if index >= len(node.input):
            return None
        name = node.input[index]
        if name not in self.values:
            refuse(node, f"its input {name!r} is produced by no earlier node")
        return self.values[name]

    def const(self, node, index, what):
        value = self.get(node, index)
        if not isinstance(value, Const):
            refuse(node, f"its {what} is not a constant")
        return value.value

    def run(self):
        for node in self.graph.node:
            self.visit(node)
        return self.finish()

    def visit(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            refuse(node, f"domain {node.domain!r} is not the standard one")
        if op == "Constant":
            return self.set(node, Const(self.constant_value(node)))
        if op in ("LSTM", "GRU", "RNN"):
            return self.recurrent(node)
        ins = [self.get(node, i) for i in range(len(node.input)) if node.input[i]]
        if any(isinstance(v, Tokens) for v in ins):
            return self.set(node, self.token_op(node, ins))
        if op in ("Transpose", "Identity") and len(ins) == 1 and isinstance(ins[0], Const):
            # A weight transposed by a node rather than stored transposed.
            perm = _attrs(node).get("perm")
            return self.set(node, Const(np.transpose(ins[0].value, perm)))
        if not any(isinstance(v, (Seq, State, Part)) for v in ins):
            if op not in _SHAPE_OPS:
                refuse(node)
            zero = op in _ZERO_PRESERVING and bool(ins) and _is_zero(ins[0])
            if op == "ConstantOfShape":
                value = _attrs(node).get("value")
                zero = value is None or not np.any(_array(value))
            if op == "Concat":
                zero = all(_is_zero(v) for v in ins)
            return self.set(node, Aux(zero))
        handler = getattr(self, "op_" + op, None)
        if handler is None:
            refuse(node)
        return self.set(node, handler(node))

    def set(self, node, value, outputs=None):
        names = list(node.output)
        # Further outputs of a one-value op are opaque (None would mean "absent").
        vals = outputs if outputs is not None else [value] + [Aux()] * (len(names) - 1)
        for name, val in zip(names, vals):
            if name:
                self.values[name] = val

    def constant_value(self, node):
        attrs = _attrs(node)
        if "value" in attrs:
            return _array(attrs["value"])
        for key in ("value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                return np.array(attrs[key])
        refuse(node, f"attributes {sorted(attrs)}")

    # Token ids and the embedding ------------------------------------------

    def token_op(self, node, ins):
        """The value of `node`, one of whose inputs `ins` is the token ids."""
        op, attrs = node.op_type, _attrs(node)
        x = self.get(node, 0)
        if op == "Gather" and isinstance(self.get(node, 1), Tokens) and len(ins) == 2:
            return self.embedding_lookup(node, attrs)
        if not isinstance(x, Tokens) or len(ins) != 1:
            refuse(node, "it reads the token ids; only their lookup in an embedding table "
                         "(a Gather on a constant [V, E] with the ids as indices) is understood")
        if op == "Shape":
            return Aux()
        if op == "Identity":
            return x
        if op == "Cast":
            if attrs.get("to") not in _INTEGER_TYPES:
                refuse(node, "it casts the token ids to a non-integer type")
            return x
        if op == "Transpose":
            perm = list(attrs.get("perm", [1, 0]))
            if sorted(perm) != [0, 1]:
                refuse(node, f"perm {perm} of the token ids' two axes")
            return Tokens(tuple(x.axes[p] for p in perm))
        refuse(node, "it reads the token ids; only their lookup in an embedding table "
                     "(a Gather on a constant [V, E] with the ids as indices) is understood")

    def embedding_lookup(self, node, attrs):
        """nn.Embedding as torch.onnx.export writes it: Gather(table, ids), axis 0."""
        table = self.get(node, 0)
        if not isinstance(table, Const):
            refuse(node, "its data, the embedding table looked up by the token ids, is not "
                         "a constant (an initializer)")
        table = table.value
        if table.ndim != 2 or table.dtype.kind != "f" or min(table.shape) < 1:
            refuse(node, f"its data, the embedding table, has shape {list(table.shape)} and "
                         f"dtype {table.dtype}; need a float [num_embeddings, embedding_dim]")
        if int(attrs.get("axis", 0)) != 0:
            refuse(node, f"attribute axis={attrs['axis']}; an embedding lookup gathers rows "
                         "(axis 0)")
        if self.embedding is not None:
            refuse(node, f"a second lookup of the token ids (node {self.embedding['node']} "
                         "is the embedding); rnnserve models have one nn.Embedding")
        self.embedding = dict(node=_name(node), table=table)
        return Seq(self.get(node, 1).axes + ("F",), -1)

    # Recurrent layers -----------------------------------------------------

    def recurrent(self, node):
        op, attrs = node.op_type, _attrs(node)
        cell = self.check_attributes(node, attrs)
        x = self.get(node, 0)
        if not isinstance(x, Seq) or x.stage == "matmul" or x.stage == "head" or x.last:
            refuse(node, "its input X is not the input sequence or a recurrent layer's output")
        if len(x.axes) != 3 or x.axes[2] != "F" or {x.axes[0], x.axes[1]} != {"x0", "x1"}:
            refuse(node, f"its input X has axes {x.axes}, not (steps, batch, features) of "
                         "the input or the previous layer")
        if hasattr(self, "steps_axis") and x.axes[0] != self.steps_axis:
            refuse(node, "its input X has steps and batch swapped against the first layer's")
        self.steps_axis, self.batch_axis = x.axes[0], x.axes[1]
        layer = x.stage + 1
        if layer in self.layers:
            refuse(node, f"layer {layer} already is node {self.layers[layer]['node']}")
        w = self.const(node, 1, "W")
        r = self.const(node, 2, "R")
        b = self.const(node, 3, "B") if self.get(node, 3) is not None else None
        if self.get(node, 4) is not None:
            refuse(node, "input sequence_lens is set; sequences have their own lengths "
                         "in rnnserve")
        for index, what in ((5, "initial_h"), (6, "initial_c")):
            if not _is_zero(self.get(node, index)):
                refuse(node, f"its {what} is not zeros")
        if self.get(node, 7) is not None and not _is_zero(self.get(node, 7)):
            refuse(node, "it has peephole weights P")
        directions = 2 if _text(attrs.get("direction", b"forward")) == "bidirectional" else 1
        hidden = int(attrs.get("hidden_size", 0))
        gates = _GATES[op]
        if hidden < 1 or w.ndim != 3 or w.shape[:2] != (directions, gates * hidden) or \
                r.shape != (directions, gates * hidden, hidden) or \
                (b is not None and b.shape != (directions, 2 * gates * hidden)):
            refuse(node, f"weight shapes W {list(w.shape)}, R {list(r.shape)}"
                         + ("" if b is None else f", B {list(b.shape)}")
                         + f" do not fit hidden_size {hidden}")
        if layer == 0 and self.embedding is not None and \
                w.shape[2] != self.embedding["table"].shape[1]:
            refuse(node, f"W reads {w.shape[2]} features; the embedding (node "
                         f"{self.embedding['node']}) gives {self.embedding['table'].shape[1]}")
        if layer > 0:
            previous = self.layers[layer - 1]
            width = previous["directions"] * previous["hidden"]
            if w.shape[2] != width:
                refuse(node, f"W reads {w.shape[2]} features; layer {layer - 1} gives {width}")
        self.layers[layer] = dict(node=_name(node), op=op, cell=cell, hidden=hidden,
                                  directions=directions, w=w, r=r, b=b)
        y = Seq((x.axes[0], "D", x.axes[1], "H"), layer, directions=directions)
        h_n = State(tuple((layer, d) for d in range(directions)))
        self.set(node, None, [y, h_n, State()][:len(node.output)])

    def check_attributes(self, node, attrs):
        op = node.op_type
        allowed = {"activations", "direction", "hidden_size"}
        if op == "LSTM":
            allowed |= {"input_forget", "layout"}
            if attrs.get("input_forget", 0):
                refuse(node, "attribute input_forget=1 (coupled input and forget gates)")
        if op == "GRU":
            allowed |= {"linear_before_reset", "layout"}
            if attrs.get("linear_before_reset", 0) != 1:
                refuse(node, "attribute linear_before_reset must be 1 (PyTorch's GRU, where "
                             "the reset gate multiplies the recurrent term with its bias)")
        if op == "RNN":
            allowed |= {"layout"}
        for key in attrs:
            if key not in allowed:
                refuse(node, f"attribute {key}")
        if attrs.get("layout", 0) != 0:
            refuse(node, "attribute layout=1 (batch-major recurrent input)")
        direction = _text(attrs.get("direction", b"forward"))
        if direction not in ("forward", "bidirectional"):
            refuse(node, f"attribute direction={direction}")
        directions = 2 if direction == "bidirectional" else 1
        activations = [_text(a) for a in attrs.get("activations", [])]
        if op == "RNN":
            activations = activations or ["Tanh"] * directions
            if len(set(activations)) != 1 or activations[0] not in ("Tanh", "Relu") or \
                    len(activations) != directions:
                refuse(node, f"attribute activations={activations}; need Tanh or Relu "
                             "for every direction")
            return "rnn_" + activations[0].lower()
        default = _DEFAULT_ACTIVATIONS[op]
        if activations and activations != default * directions:
            refuse(node, f"attribute activations={activations}; only the default "
                         f"{default} per direction")
        return {"LSTM": "lstm", "GRU": "gru"}[op]

    # Plumbing between layers and the head ---------------------------------

    def seq_input(self, node):
        x = self.get(node, 0)
        if isinstance(x, State):
            refuse(node, "it reads a recurrent layer's final states (h_n, c_n) other than as "
                         "h_n[i] (a Gather of one index) joined by Concat for the final_state "
                         "readout")
        if not isinstance(x, Seq):
            refuse(node, "its first input is not the recurrent output")
        for i in range(1, len(node.input)):
            if isinstance(self.get(node, i), (Seq, State)):
                refuse(node, "it combines the recurrent output with itself")
        return x

    def op_Identity(self, node):
        value = self.get(node, 0)
        if isinstance(value, State):
            return value
        return self.seq_input(node)

    def op_Shape(self, node):
        return Aux()

    def op_Concat(self, node):
        values = [self.get(node, i) for i in range(len(node.input))]
        axis = int(_attrs(node).get("axis", 0))
        if all(isinstance(v, State) for v in values):
            # The final states of several layers: a graph output, or h_n read by the head.
            if axis != 0 or any(v.parts is None for v in values):
                return State()
            return State(sum((v.parts for v in values), ()))
        if all(isinstance(v, Part) for v in values) and axis in (1, -1):
            return self.final_state(node, values)
        refuse(node, "it concatenates the recurrent output with something")

    def op_Transpose(self, node):
        x = self.seq_input(node)
        perm = list(_attrs(node).get("perm", reversed(range(len(x.axes)))))
        if sorted(perm) != list(range(len(x.axes))):
            refuse(node, f"perm {perm}")
        return replace(x, axes=tuple(x.axes[p] for p in perm))

    def op_Reshape(self, node):
        x = self.seq_input(node)
        shape = [int(v) for v in self.const(node, 1, "shape").reshape(-1)]
        n = len(x.axes)
        if n >= 3 and x.axes[-2:] == ("D", "H") and len(shape) == n - 1 and \
                all(v == 0 for v in shape[:-1]) and \
                shape[-1] in (-1, x.directions * self.layers[x.stage]["hidden"]):
            return replace(x, axes=x.axes[:-2] + ("F",))
        refuse(node, f"reshape of axes {x.axes} to {shape}: only joining the directions "
                     "of a recurrent output, forward first, is understood")

    def h(self):
        return self.layers[max(self.layers)]["hidden"]

    def axes_argument(self, node, index, attr):
        attrs = _attrs(node)
        if attr in attrs:
            return [int(a) for a in attrs[attr]]
        if index < len(node.input) and node.input[index]:
            return [int(a) for a in self.const(node, index, attr).reshape(-1)]
        return None

    def op_Squeeze(self, node):
        x = self.seq_input(node)
        axes = self.axes_argument(node, 1, "axes")
        if axes is None:
            refuse(node, "squeeze without axes")
        axes = sorted(a % len(x.axes) for a in axes)
        keep, last = list(x.axes), x.last
        for a in reversed(axes):
            label = x.axes[a]
            if label == "D" and x.directions == 1:
                # One direction: the hidden axis is then the features.
                keep = ["F" if k == "H" else k for k in keep]
            elif label == "last":
                last = True
            else:
                refuse(node, f"it squeezes axis {a} ({label}) of axes {x.axes}")
            del keep[a]
        return replace(x, axes=tuple(keep), last=last)

    def step_axis(self, node, x, axis):
        axis %= len(x.axes)
        if x.last or x.axes[axis] != getattr(self, "steps_axis", None):
            refuse(node, f"it selects along axis {axis} ({x.axes[axis]}) of axes {x.axes}, "
                         "not along the steps")
        return axis

    def op_Gather(self, node):
        if isinstance(self.get(node, 0), State):
            return self.state_gather(node, self.get(node, 0))
        x = self.seq_input(node)
        axis = self.step_axis(node, x, int(_attrs(node).get("axis", 0)))
        index = self.const(node, 1, "index")
        if index.size != 1 or int(index.reshape(-1)[0]) != -1:
            refuse(node, f"it takes step {index.reshape(-1).tolist()}; only the last (-1)")
        axes = list(x.axes)
        if index.ndim == 0:
            del axes[axis]
            return replace(x, axes=tuple(axes), last=True)
        axes[axis] = "last"
        return replace(x, axes=tuple(axes))

    def op_Slice(self, node):
        x = self.seq_input(node)
        starts = self.const(node, 1, "starts").reshape(-1).tolist()
        ends = self.const(node, 2, "ends").reshape(-1).tolist()
        axes = self.axes_argument(node, 3, "axes") or list(range(len(starts)))
        steps = self.axes_argument(node, 4, "steps") or [1] * len(starts)
        if len(starts) != 1 or starts[0] != -1 or ends[0] < 2**31 - 1 or steps[0] != 1:
            refuse(node, f"slice starts {starts} ends {ends} steps {steps}: only the last "
                         "step ([-1:]) is understood")
        axis = self.step_axis(node, x, axes[0])
        labels = list(x.axes)
        labels[axis] = "last"
        return replace(x, axes=tuple(labels))

    # Readouts -------------------------------------------------------------

    def op_ReduceMean(self, node):
        return self.reduce(node, "mean")

    def op_ReduceMax(self, node):
        return self.reduce(node, "max")

    def reduce(self, node, readout):
        x = self.seq_input(node)
        self.head_input(node, x)
        attrs = _attrs(node)
        if attrs.get("keepdims", 1) != 0 or attrs.get("noop_with_empty_axes", 0):
            refuse(node, "only keepdims=0 (torch's mean(dim=...) / max(dim=...)) is understood")
        axes = self.axes_argument(node, 1, "axes")
        if axes is None or len(axes) != 1:
            refuse(node, f"it reduces axes {axes}; only the steps axis is understood")
        axis = self.step_axis(node, x, axes[0])
        labels = list(x.axes)
        del labels[axis]
        return replace(x, axes=tuple(labels), last=True, readout=readout)

    def state_gather(self, node, state):
        attrs = _attrs(node)
        if state.parts is None:
            refuse(node, "it reads an LSTM's final cell state c_n; the head may read the "
                         "recurrent output or the final hidden state h_n")
        index = self.const(node, 1, "index")
        if attrs.get("axis", 0) != 0 or index.ndim != 0:
            refuse(node, "of the final states h_n only h_n[i] (a Gather of one index on "
                         "axis 0) is understood")
        i = int(index)
        if not -len(state.parts) <= i < len(state.parts):
            refuse(node, f"index {i} of {len(state.parts)} final states")
        return Part(*state.parts[i])

    def final_state(self, node, parts):
        """The Seq for the head reading the Parts `parts`, concatenated."""
        last = max(self.layers)
        directions = self.layers[last]["directions"]
        if list(parts) != [Part(last, d) for d in range(directions)]:
            refuse(node, f"it reads the final states {[(p.layer, p.direction) for p in parts]} "
                         "as (layer, direction); the final_state readout is the last layer's "
                         "h_n, forward direction first (torch.cat((h_n[-2], h_n[-1]), dim=1))")
        return Seq((self.batch_axis, "F"), last, last=True, directions=directions,
                   readout="final_state")

    # The head -------------------------------------------------------------

    def head_value(self, node, index=0):
        """The current head value (the output of the last head module) at input `index`."""
        x = self.get(node, index)
        if isinstance(x, Part):
            return self.final_state(node, [x])
        if not isinstance(x, Seq) or x.stage not in ("head", "matmul") or \
                x.modules != len(self.modules) or x.gelu:
            refuse(node, "its input is not the output of the head's last module")
        return x

    def head_input(self, node, x):
        if not isinstance(x.stage, int) or x.stage < 0 or x.axes[-1] != "F":
            refuse(node, f"its input (axes {x.axes}) is not a recurrent layer's output "
                         "with its directions joined")
        if any(a in ("D", "H", "last") for a in x.axes):
            refuse(node, f"its input has axes {x.axes}")

    def linear_input(self, node):
        x = self.get(node, 0)
        if isinstance(x, Part):
            return self.final_state(node, [x])
        if isinstance(x, Seq) and x.stage in ("head", "matmul"):
            return self.head_value(node)
        x = self.seq_input(node)
        self.head_input(node, x)
        return x

    def op_Gemm(self, node):
        x = self.linear_input(node)
        attrs = _attrs(node)
        for key, want in (("alpha", 1.0), ("beta", 1.0), ("transA", 0)):
            if attrs.get(key, want) != want:
                refuse(node, f"attribute {key}={attrs[key]}")
        weight = self.const(node, 1, "weight B")
        if attrs.get("transB", 0) == 0:
            weight = weight.T
        bias = self.const(node, 2, "bias C") if self.get(node, 2) is not None else None
        return self.head(node, x, weight, bias)

    def op_MatMul(self, node):
        x = self.linear_input(node)
        weight = self.const(node, 1, "weight")
        if weight.ndim != 2:
            refuse(node, f"weight of shape {list(weight.shape)}")
        return self.head(node, x, weight.T, None, stage="matmul")

    def op_Add(self, node):
        values = [self.get(node, 0), self.get(node, 1)]
        seqs = [v for v in values if isinstance(v, Seq)]
        consts = [v for v in values if isinstance(v, Const)]
        if len(seqs) == 1 and len(consts) == 1 and seqs[0].gelu == "erf" and \
                np.allclose(consts[0].value, 1.0) and consts[0].value.size == 1:
            return replace(seqs[0], gelu="add")
        if len(seqs) != 1 or len(consts) != 1 or seqs[0].stage != "matmul" or \
                seqs[0].modules != len(self.modules) or seqs[0].gelu:
            refuse(node, "only the head's bias added to its MatMul (or the 1 + erf of a GELU) "
                         "is understood")
        linear = self.modules[-1]
        linear["bias"] = _head_bias(node, consts[0].value, linear["weight"].shape[0])
        return replace(seqs[0], stage="head")

    def activation(self, node, name):
        x = self.head_value(node)
        self.modules.append(dict(kind=name, node=node))
        return replace(x, stage="head", modules=len(self.modules))

    def op_Relu(self, node):
        return self.activation(node, "relu")

    def op_Tanh(self, node):
        return self.activation(node, "tanh")

    def op_Sigmoid(self, node):
        return self.activation(node, "sigmoid")

    def op_Gelu(self, node):
        if _text(_attrs(node).get("approximate", b"none")) != "none":
            refuse(node, "attribute approximate: only the exact (erf) GELU")
        return self.activation(node, "gelu")

    # GELU as torch.onnx.export writes it below opset 20:
    # Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5).
    def op_Div(self, node):
        x = self.head_value(node)
        c = self.get(node, 1)
        if not isinstance(c, Const) or c.value.size != 1 or \
                not np.isclose(float(c.value.reshape(-1)[0]), np.sqrt(2.0), rtol=1e-6):
            refuse(node, "only the division by sqrt(2) of a GELU is understood")
        return replace(x, gelu="div")

    def op_Erf(self, node):
        x = self.get(node, 0)
        if not isinstance(x, Seq) or x.gelu != "div":
            refuse(node, "only the erf(x / sqrt(2)) of a GELU is understood")
        return replace(x, gelu="erf")

    def op_Mul(self, node):
        values = [self.get(node, 0), self.get(node, 1)]
        kinds = sorted((v.gelu if isinstance(v, Seq) else "const") for v in values
                       if isinstance(v, (Seq, Const)))
        if kinds == ["", "add"]:
            plain = next(v for v in values if v.gelu == "")
            other = next(v for v in values if v.gelu == "add")
            if plain.stage in ("head", "matmul") and plain.modules == len(self.modules) and \
                    plain.stage == other.stage:
                return replace(plain, gelu="mul")
        if kinds == ["const", "mul"]:
            c = next(v for v in values if isinstance(v, Const))
            if c.value.size == 1 and np.isclose(float(c.value.reshape(-1)[0]), 0.5):
                return self.activation_of(node, next(v for v in values if isinstance(v, Seq)))
        refuse(node, "only the multiplications of a GELU (x * (1 + erf(x / sqrt(2))) * 0.5) "
                     "are understood")

    def activation_of(self, node, x):
        self.modules.append(dict(kind="gelu", node=node))
        return replace(x, stage="head", gelu="", modules=len(self.modules))

    def head(self, node, x, weight, bias, stage="head"):
        if x.stage in ("head", "matmul"):
            linears = [m for m in self.modules if m["kind"] == "linear"]
            width = linears[-1]["weight"].shape[0]
        else:
            if x.stage != max(self.layers):
                refuse(node, f"it reads layer {x.stage}, not the last layer "
                             f"{max(self.layers)}")
            width = x.directions * self.h()
            self.head_layer = x.stage
        if weight.ndim != 2 or weight.shape[1] != width:
            refuse(node, f"weight of shape {list(weight.shape)} for a {width}-wide input")
        self.modules.append(dict(kind="linear", node=node, weight=weight,
                                 bias=None if bias is None else
                                 _head_bias(node, bias, weight.shape[0])))
        return replace(x, axes=x.axes[:-1] + ("O",), stage=stage, modules=len(self.modules))

    head_layer = None

    # The result -----------------------------------------------------------

    def finish(self):
        if not self.layers:
            raise OnnxImportError("the graph has no LSTM, GRU or RNN node; " + SUPPORTED)
        heads = []
        for output in self.graph.output:
            value = self.values.get(output.name)
            if isinstance(value, State):
                continue
            if isinstance(value, Seq) and value.stage in ("head", "matmul") and \
                    not value.gelu and value.modules == len(self.modules):
                heads.append((output.name, value))
                continue
            node = self.producer(output.name)
            if node is None:
                raise OnnxImportError(f"graph output {output.name} is not the head's output; "
                                      + SUPPORTED)
            refuse(node, f"it makes graph output {output.name}, which is not the head's "
                         "output or a recurrent state")
        if len(heads) != 1:
            raise OnnxImportError(f"the graph has {len(heads)} head outputs "
                                  f"({[n for n, _ in heads]}); need exactly one, a Linear "
                                  "head after the recurrent layers")
        name, value = heads[0]
        if self.modules[-1]["kind"] != "linear":
            refuse(self.modules[-1]["node"], f"activation {self.modules[-1]['kind']} after the "
                   "head's last linear layer (rnnserve's head ends with a linear layer)")
        last_layer = self.layers[max(self.layers)]
        if self.head_layer != max(self.layers):
            raise OnnxImportError(
                f"node {last_layer['node']} (op {last_layer['op']}) is not supported: its "
                f"output does not reach the head, which reads layer {self.head_layer}; "
                + SUPPORTED)
        if value.last:
            task = "classification"
        elif len(value.axes) == 3 and set(value.axes[:2]) == {"x0", "x1"}:
            task = "regression"
        else:
            raise OnnxImportError(f"graph output {name} has axes {value.axes}: neither the "
                                  "last step nor every step")
        return self.tensors(task, value.readout)

    def producer(self, name):
        for node in self.graph.node:
            if name in node.output:
                return node
        return None

    def tensors(self, task, readout):
        first = self.layers[0]
        for k, layer in self.layers.items():
            for key in ("cell", "hidden", "directions"):
                if layer[key] != first[key]:
                    raise OnnxImportError(
                        f"layer {k} (node {layer['node']}) differs from layer 0 in {key}: "
                        f"{layer[key]} vs {first[key]}")
        has_bias = any(layer["b"] is not None for layer in self.layers.values())
        out = OrderedDict()
        if self.embedding is not None:
            out["embedding.weight"] = np.array(self.embedding["table"], dtype=np.float32,
                                               order="C")
        for k in range(len(self.layers)):
            layer = self.layers[k]
            order, hidden = _GATE_ORDER[layer["op"]], layer["hidden"]
            for d in range(layer["directions"]):
                suffix = f"_l{k}" + ("_reverse" if d else "")
                out["rnn.weight_ih" + suffix] = _reorder(layer["w"][d], order, hidden)
                out["rnn.weight_hh" + suffix] = _reorder(layer["r"][d], order, hidden)
                if has_bias:
                    b = layer["b"]
                    if b is None:
                        b = np.zeros((layer["directions"], 2 * len(order) * hidden))
                    wb, rb = np.split(b[d], 2)
                    out["rnn.bias_ih" + suffix] = _reorder(wb, order, hidden)
                    out["rnn.bias_hh" + suffix] = _reorder(rb, order, hidden)
        sequential = len(self.modules) > 1
        head = [] if sequential else None
        for i, module in enumerate(self.modules):
            if sequential:
                head.append((module["kind"], None))
            if module["kind"] != "linear":
                continue
            prefix = f"out.{i}." if sequential else "out."
            weight = module["weight"]
            out[prefix + "weight"] = np.array(weight, dtype=np.float32, order="C")
            out[prefix + "bias"] = np.zeros(weight.shape[0], np.float32) \
                if module["bias"] is None else module["bias"]
        config = OrderedDict([
            ("cell", first["cell"]), ("input_size", int(first["w"].shape[2])),
            ("hidden_size", first["hidden"]), ("num_layers", len(self.layers)),
            ("bidirectional", first["directions"] == 2), ("bias", has_bias),
            ("output_size", int(self.modules[-1]["weight"].shape[0])), ("task", task),
            ("readout", None if readout == "last_output" else readout), ("head", head)])
        return config, out


def _array(tensor):
    from onnx import numpy_helper
    return numpy_helper.to_array(tensor)


def _is_zero(value):
    if value is None:
        return True
    if isinstance(value, Aux):
        return value.zero
    if isinstance(value, Const):
        return not np.any(value.value)
    return False


def _head_bias(node, bias, width):
    if bias.size != width or any(d != 1 for d in bias.shape[:-1]):
        refuse(node, f"bias of shape {list(bias.shape)} for {width} outputs")
    return np.array(bias.reshape(width), dtype=np.float32, order="C")


def _reorder(array, order, hidden):
    blocks = [array[g * hidden:(g + 1) * hidden] for g in order]
    return np.array(np.concatenate(blocks, axis=0), dtype=np.float32, order="C")


def import_onnx(path):
    """(partial config, tensors) of the ONNX model at `path`.

    The partial config has cell, input_size, hidden_size, num_layers,
    bidirectional, bias, output_size, task (classification when the head
    reads one row per sequence, regression when it reads every step),
    readout (None for last_output, else final_state, mean or max) and head
    (None for a single Linear, else the Sequential's modules in order as
    (name, None) pairs, export_model's head=). tensors maps
    PyTorch state_dict names (embedding.weight for token-id input, rnn.*,
    out.*) to float32 arrays, gate blocks in PyTorch's order; export_model
    derives config "embedding" from embedding.weight's shape. Raises OnnxImportError naming the node it cannot import.
    """
    try:
        import onnx
    except ImportError:
        raise OnnxImportError("reading ONNX needs the onnx module "
                              "(Debian package python3-onnx)") from None
    try:
        model = onnx.load(path)
    except Exception as e:  # noqa: BLE001 - protobuf raises several kinds
        raise OnnxImportError(f"{path}: not an ONNX model: {e}") from None
    opsets = {o.domain: o.version for o in model.opset_import}
    opset = opsets.get("", opsets.get("ai.onnx", 0))
    if opset < MIN_OPSET:
        raise OnnxImportError(f"{path}: opset {opset}; need {MIN_OPSET} or later "
                              "(torch.onnx.export(..., opset_version=14))")
    try:
        return _Importer(model).run()
    except OnnxImportError as e:
        raise OnnxImportError(f"{path}: {e}") from None
