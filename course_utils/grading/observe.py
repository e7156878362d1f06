"""Runs in a kernel: turns what a probe computes into plain data for the trusted verdict.

The grader's verdict is decided outside the learner's kernel (``trusted``). A *probe* is a
function from ``solutions/probes/``; the grader runs its body, with sizes and a seed it
draws, in the learner's kernel and in a reference kernel that holds only the solution, and
compares the two results itself. This module is what both kernels use to build inputs
(``randn``, ``seeded``), to report a module's behaviour with weights drawn from the seed
(``behave``) or its make-up
(``describe``; the reference rebuilds it with ``rebuild``), and to encode the result as JSON
(``encode``): numbers, strings, lists, dicts and tensors as flat lists, never pickles.

In the learner's kernel all of this is untrusted: learner code may replace any of it. That
gains nothing, since the grader only compares the JSON text it receives with the
reference's, using its own comparison, for sizes the learner's code cannot know in advance.

>>> encode({"n": 3, "shape": (2, 5)})
'{"n": 3, "shape": [2, 5]}'
>>> run_probe(lambda observe: 1 / 0)
'{"$error": "ZeroDivisionError: division by zero"}'
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_NUMBERS", "encode", "plain", "run_probe", "randn", "seeded", "behave",
           "describe", "rebuild", "draw_weights", "state_size"]

MAX_NUMBERS = 2_000_000  # a result larger than this is refused, not encoded


class _TooLarge(ValueError):
    pass


def plain(value: Any, _budget: list[int] | None = None, _depth: int = 0) -> Any:
    """``value`` as JSON-ready data: tensors and arrays become
    ``{"$tensor": {"shape", "dtype", "values"}}``, tuples lists, ``torch.Size`` a list;
    anything else (a module, a function ...) raises ``TypeError``.

    >>> plain((1, 2.5, None, "a", [True]))
    [1, 2.5, None, 'a', [True]]
    """
    budget = [MAX_NUMBERS] if _budget is None else _budget
    if _depth > 50:
        raise _TooLarge("the result is nested more than 50 levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        budget[0] -= len(value)
        if budget[0] < 0:
            raise _TooLarge("the result is too large to compare")
        return [plain(v, budget, _depth + 1) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("a dict whose keys are not all strings")
        return {k: plain(v, budget, _depth + 1) for k, v in value.items()}
    import numpy as np
    import torch

    if isinstance(value, np.generic):
        return plain(value.item(), budget, _depth)
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor):
        budget[0] -= value.numel()
        if budget[0] < 0:
            raise _TooLarge("the result is too large to compare")
        flat = value.detach().to("cpu").reshape(-1)
        values = flat.tolist() if not flat.is_floating_point() else flat.double().tolist()
        return {"$tensor": {"shape": list(value.shape), "dtype": str(value.dtype).split(".")[-1],
                            "values": values}}
    raise TypeError(f"a {type(value).__name__}, which the grader cannot compare")


def encode(value: Any) -> str:
    """``plain(value)`` as JSON text (NaN and infinities kept as JSON's extensions)."""
    return json.dumps(plain(value))


def run_probe(function: Callable[[Any], Any]) -> str:
    """Call a probe body (``function(observe)``) and encode its result, or the error it
    raised as ``{"$error": "Name: message"}``."""
    import sys

    try:
        return encode(function(sys.modules[__name__]))
    except Exception as error:  # the learner's error is part of the result
        return json.dumps({"$error": f"{type(error).__name__}: {str(error)[:300]}"})


# ---------------------------------------------------------------------- inputs


def randn(seed: int, *shape: int) -> Any:
    """A standard normal tensor of ``shape`` from its own generator (the global seed is
    left alone).

    >>> tuple(randn(1, 2, 3).shape), bool((randn(1, 4) == randn(1, 4)).all())
    ((2, 3), True)
    """
    import torch

    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn(*shape, generator=generator)


def seeded(seed: int, factory: Callable[[], Any]) -> Any:
    """``factory()`` after ``torch.manual_seed(seed)``: the same module in every kernel."""
    import torch

    torch.manual_seed(int(seed))
    return factory()


# ---------------------------------------------------------------------- modules


def _tensor_text(tensor: Any) -> list:
    """[shape, base64 of its float64 values]: exact, and compact enough to send back."""
    flat = tensor.detach().to("cpu").double().reshape(-1).contiguous()
    return [list(tensor.shape), base64.b64encode(flat.numpy().tobytes()).decode("ascii")]


def _tensor_from(item: Any, dtype: Any) -> Any:
    import numpy as np
    import torch

    shape, text = item
    values = np.frombuffer(base64.b64decode(text), dtype=np.float64).copy()
    if values.size != math.prod(shape):
        raise ValueError(f"a tensor of shape {shape} with {values.size} values")
    return torch.from_numpy(values).reshape(shape).to(dtype)


def state_size(model: Any) -> int:
    """Numbers in the model's parameters and buffers (shared tensors counted once)."""
    seen = {id(t): t.numel() for t in (*model.parameters(), *model.buffers())}
    return sum(seen.values())


def draw_weights(model: Any, seed: int) -> None:
    """Give every parameter of ``model`` values drawn from ``seed``: the k-th parameter of a
    given shape gets the same numbers in every kernel, whatever order the layers were
    registered in (scaled by 1/sqrt(fan-in), so the outputs stay in a sane range)."""
    import torch

    counts: dict[tuple, int] = {}
    with torch.no_grad():
        for p in model.parameters():
            shape = tuple(p.shape)
            k = counts[shape] = counts.get(shape, -1) + 1
            mix = sum((i + 2) * 1_000_003 ** i * d for i, d in enumerate(shape))
            generator = torch.Generator().manual_seed((int(seed) * 7919 + k * 104_729 + mix)
                                                      % 2**62)
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
            p.copy_(torch.randn(shape, generator=generator) / math.sqrt(max(1, fan_in)))


def behave(model: Any, x: Any, seed: int, *, train_mode: bool | None = None) -> dict:
    """What ``model`` does on ``x`` with weights the grader draws from ``seed``
    (``draw_weights``, the same in both kernels): its mode, parameter shapes and output.

    The weights are never the learner's: a model that ignores its layers, or weights chosen
    to make every output zero, cannot match. ``train_mode`` switches the mode for the
    forward pass (and back).
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    draw_weights(model, seed)
    was = model.training
    if train_mode is not None:
        model.train(train_mode)
    with torch.no_grad():
        out = model(x)
    model.train(was)
    return {"training": was, "shapes": sorted(list(p.shape) for p in params), "out": out}


# A module is described by its class (a torch.nn class only), its plain attributes, its
# parameters and buffers, and its children; a root whose class is not in torch.nn is traced
# with torch.fx, and its graph is described node by node with functions named, not pickled.
_PLAIN = (int, float, str, bool, type(None))


def _is_plain(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def _module_tree(module: Any) -> dict:
    cls = type(module)
    attrs = {k: (list(v) if isinstance(v, tuple) else v, isinstance(v, tuple))
             for k, v in vars(module).items()
             if not k.startswith("__") and _is_plain(v) and k != "training"}
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "training": module.training,
            "attrs": {k: [v, t] for k, (v, t) in attrs.items()},
            "params": {k: (None if p is None else _tensor_text(p))
                       for k, p in module._parameters.items()},
            "frozen": sorted(k for k, p in module._parameters.items()
                             if p is not None and not p.requires_grad),
            "buffers": {k: (None if b is None else [*_tensor_text(b), str(b.dtype)])
                        for k, b in module._buffers.items()},
            "children": {k: (None if c is None else _module_tree(c))
                         for k, c in module._modules.items()}}


def _arg(value: Any) -> Any:
    import torch.fx

    if isinstance(value, torch.fx.Node):
        return {"$node": value.name}
    if isinstance(value, (tuple, list)):
        return {"$seq": [_arg(v) for v in value], "tuple": isinstance(value, tuple)}
    if isinstance(value, dict):
        return {"$map": {k: _arg(v) for k, v in value.items()}}
    if isinstance(value, slice):
        return {"$slice": [_arg(value.start), _arg(value.stop), _arg(value.step)]}
    if value is Ellipsis:
        return {"$ellipsis": True}
    if _is_plain(value):
        return value
    import torch

    if isinstance(value, torch.dtype):
        return {"$dtype": str(value).split(".")[-1]}
    raise TypeError(f"the model's forward uses a {type(value).__name__} the grader cannot send")


def _target(node: Any) -> str:
    import importlib

    target = node.target
    if isinstance(target, str):
        return target
    name = getattr(target, "__name__", "")
    for module in ("torch", "torch.nn.functional", "operator", "math", "builtins"):
        if name and getattr(importlib.import_module(module), name, None) is target:
            return f"{module}.{name}"
    module = getattr(target, "__module__", None) or ""
    return f"{module}.{getattr(target, '__qualname__', getattr(target, '__name__', '?'))}"


def describe(model: Any) -> dict:
    """The make-up of ``model`` as plain data, for the reference kernel to ``rebuild``."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    root = type(model).__module__.startswith("torch.nn.")
    if root:
        return {"tree": _module_tree(model), "graph": None}
    import torch.fx

    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as error:
        raise TypeError(f"the grader rebuilds your model from its layers and forward, and "
                        f"torch.fx could not trace its forward ({type(error).__name__}: "
                        f"{str(error)[:200]})") from None
    tree = _module_tree(traced)
    tree["class"] = "torch.nn.Module"
    tree["training"] = model.training
    graph = [{"op": n.op, "name": n.name, "target": _target(n), "args": _arg(n.args),
              "kwargs": _arg(n.kwargs)} for n in traced.graph.nodes]
    return {"tree": tree, "graph": graph}


# The functions a rebuilt forward may call, by module: an allowlist (no file, compiler,
# operator-registry or global-state function of torch is reachable, and no operator that
# fetches attributes or calls what it is given, such as attrgetter or call).
_ALLOWED = {
    "torch": frozenset({
        "cat", "concat", "stack", "hstack", "vstack", "flatten", "unflatten", "reshape",
        "transpose", "permute", "squeeze", "unsqueeze", "chunk", "split", "narrow", "select",
        "index_select", "gather", "flip", "roll", "where", "relu", "sigmoid", "tanh",
        "softmax", "log_softmax", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs",
        "neg", "sign", "clamp", "clip", "minimum", "maximum", "add", "sub", "mul", "div",
        "true_divide", "pow", "square", "matmul", "mm", "bmm", "einsum", "mean", "sum", "prod",
        "amax", "amin", "max", "min", "argmax", "argmin", "std", "var", "norm", "cumsum",
        "logsumexp", "zeros_like", "ones_like", "full_like", "floor", "ceil", "round", "erf",
        "sin", "cos", "dropout", "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "t",
        "unbind", "broadcast_to", "tile", "repeat_interleave", "addmm", "baddbmm"}),
    "torch.nn.functional": frozenset({
        "relu", "relu6", "gelu", "silu", "elu", "selu", "leaky_relu", "prelu", "hardtanh",
        "hardswish", "hardsigmoid", "mish", "softplus", "sigmoid", "tanh", "softmax",
        "log_softmax", "linear", "bilinear", "conv1d", "conv2d", "conv3d", "max_pool1d",
        "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
        "adaptive_max_pool1d", "adaptive_max_pool2d", "dropout", "dropout2d", "batch_norm",
        "layer_norm", "group_norm", "instance_norm", "pad", "interpolate", "normalize",
        "embedding", "pixel_shuffle", "glu", "logsigmoid", "softsign", "tanhshrink"}),
    "operator": frozenset({
        "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs",
        "matmul", "getitem", "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor",
        "invert", "not_", "iadd", "isub", "imul", "itruediv", "imatmul"}),
    "math": frozenset({"sqrt", "prod", "floor", "ceil", "log", "exp", "pi"}),
    "builtins": frozenset({"len", "int", "float", "bool", "tuple", "list", "range", "min",
                           "max", "abs", "sum", "round", "divmod", "pow"}),
}
_ALLOWED["_operator"] = _ALLOWED["operator"]
_ALLOWED["torch.functional"] = _ALLOWED["torch"]
MAX_CONSTANTS = 256  # numbers a rebuilt forward may hold outside parameters and buffers
MAX_LAYER_NUMBERS = 32  # numbers in one layer's settings (a Conv2d has 17)
MAX_NODES = 2_000
_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim", "T", "mT", "real", "imag",
                         "is_cuda", "requires_grad"})
_METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "size", "dim", "numel",
    "permute", "transpose", "t", "contiguous", "expand", "expand_as", "repeat", "squeeze",
    "unsqueeze", "chunk", "split", "narrow", "select", "index_select", "gather", "flip",
    "roll", "mean", "sum", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "std",
    "var", "norm", "cumsum", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "exp", "log",
    "sqrt", "rsqrt", "abs", "neg", "clamp", "clamp_min", "clamp_max", "pow", "add", "sub",
    "mul", "div", "matmul", "mm", "bmm", "float", "double", "half", "to", "type_as",
    "masked_fill", "where", "detach", "clone", "sign", "round", "floor", "ceil", "square",
    "add_", "mul_", "relu_", "clamp_", "sub_", "div_", "sigmoid_", "tanh_", "all", "any", "eq",
    "ne", "lt", "le", "gt", "ge", "split_with_sizes", "unbind", "new_zeros", "new_ones",
    "new_full", "zero_", "fill_", "long", "int", "bool"})


def _attribute(obj: Any, name: str) -> Any:
    """``getattr`` for a rebuilt graph (``x.shape`` traces to it): a few tensor facts only."""
    if name not in _ATTRIBUTES:
        raise ValueError(f"the grader does not rebuild access to the attribute {name!r}")
    return getattr(obj, name)


def _item(container: Any, key: Any) -> Any:
    """``operator.getitem`` for a rebuilt graph: no private keys."""
    if isinstance(key, str) and key.startswith("_"):
        raise ValueError(f"the grader does not rebuild reading the key {key!r}")
    return container[key]


def _function(name: str) -> Any:
    import importlib

    if name == "builtins.getattr":
        return _attribute
    if name in ("operator.getitem", "_operator.getitem"):
        return _item
    module_name, _, attr = name.rpartition(".")
    if attr not in _ALLOWED.get(module_name, ()):
        raise ValueError("the grader does not rebuild calls to a function it does not list")
    return getattr(importlib.import_module(module_name), attr)


def _numbers(value: Any) -> int:
    """How many numbers a plain value (or a described argument) holds."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return 0
    if isinstance(value, (int, float)):
        return 1
    if isinstance(value, (list, tuple)):
        return sum(_numbers(v) for v in value)
    if isinstance(value, dict):
        return sum(_numbers(v) for v in value.values())
    return 0


def _path(target: Any) -> str:
    """A submodule or attribute path of the rebuilt model: public names only."""
    parts = str(target).split(".")
    if not all(p.isidentifier() and not p.startswith("_") for p in parts):
        raise ValueError(f"a graph node that reads {target!r}")
    return str(target)


def _build_tree(spec: dict) -> Any:
    import importlib

    import torch

    module_name, _, name = spec["class"].rpartition(".")
    if not (module_name == "torch.nn" or module_name.startswith("torch.nn.modules.")):
        raise ValueError(f"the grader rebuilds torch.nn layers only, not {spec['class']}")
    cls = getattr(importlib.import_module(module_name), name)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ValueError(f"{spec['class']} is not a layer")
    if _numbers([v for v, _ in spec["attrs"].values()]) > MAX_LAYER_NUMBERS:
        raise ValueError("a layer with more settings than a torch.nn layer has")
    module = cls.__new__(cls)
    torch.nn.Module.__init__(module)
    for key, (value, is_tuple) in spec["attrs"].items():
        if not key.isidentifier() or key.startswith("__") or key in ("forward", "training"):
            raise ValueError(f"an attribute named {key!r}")
        setattr(module, key, _tuples(value) if is_tuple else value)
    frozen = set(spec.get("frozen", ()))
    for key, item in spec["params"].items():
        value = None if item is None else torch.nn.Parameter(
            _tensor_from(item, torch.float32), requires_grad=key not in frozen)
        module.register_parameter(key, value)
    for key, item in spec["buffers"].items():
        value = None if item is None else _tensor_from(item[:2], getattr(torch, item[2][6:]))
        module.register_buffer(key, value)
    for key, child in spec["children"].items():
        module.add_module(key, None if child is None else _build_tree(child))
    module.train(bool(spec["training"]))
    return module


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _unarg(value: Any, nodes: dict) -> Any:
    import torch

    if isinstance(value, dict):
        if "$node" in value:
            return nodes[value["$node"]]
        if "$seq" in value:
            items = [_unarg(v, nodes) for v in value["$seq"]]
            return tuple(items) if value.get("tuple") else items
        if "$map" in value:
            return {k: _unarg(v, nodes) for k, v in value["$map"].items()}
        if "$slice" in value:
            return slice(*(_unarg(v, nodes) for v in value["$slice"]))
        if "$ellipsis" in value:
            return Ellipsis
        if "$dtype" in value:
            return getattr(torch, value["$dtype"])
        raise ValueError("an argument the grader does not know")
    return value


def rebuild(description: Any) -> Any:
    """The model ``describe`` described, built from torch.nn classes and named functions
    only (the description is the learner's data: nothing in it is executed)."""
    import torch

    if isinstance(description, str):
        description = json.loads(description)
    if isinstance(description, dict) and "$error" in description:
        raise ValueError(description["$error"])
    tree = description["tree"]
    graph_spec = description["graph"] or []
    constants = _numbers([[n.get("args"), n.get("kwargs")] for n in graph_spec])
    if constants > MAX_CONSTANTS or len(graph_spec) > MAX_NODES:
        raise ValueError(f"the model's forward holds {constants} numbers outside its "
                         f"parameters and buffers (at most {MAX_CONSTANTS})")
    if description["graph"] is None:
        return _build_tree(tree)
    import torch.fx

    root = torch.nn.Module()
    for key, child in tree["children"].items():
        root.add_module(key, None if child is None else _build_tree(child))
    for key, item in tree["params"].items():
        root.register_parameter(key, None if item is None else torch.nn.Parameter(
            _tensor_from(item, torch.float32)))
    for key, item in tree["buffers"].items():
        root.register_buffer(key, None if item is None else _tensor_from(
            item[:2], getattr(torch, item[2][6:])))
    stored = {*dict(root.named_parameters(remove_duplicate=False)),
              *dict(root.named_buffers(remove_duplicate=False))}
    graph = torch.fx.Graph()
    nodes: dict[str, Any] = {}
    for spec in description["graph"]:
        op, target = spec["op"], spec["target"]
        args, kwargs = _unarg(spec["args"], nodes), _unarg(spec["kwargs"], nodes)
        if op == "placeholder":
            node = graph.placeholder(str(target))
        elif op == "output":
            node = graph.output(args[0])
        elif op == "call_module":
            node = graph.create_node(op, _path(target), args, kwargs)
        elif op == "get_attr":  # a parameter or a buffer: every number in it is counted
            if _path(target) not in stored:
                raise ValueError("a graph node that reads something other than a parameter "
                                 "or a buffer")
            node = graph.create_node(op, str(target), args, kwargs)
        elif op == "call_method":
            if str(target) not in _METHODS:
                raise ValueError(f"the grader does not rebuild calls to the method {target!r}")
            node = graph.call_method(str(target), args, kwargs)
        elif op == "call_function":
            node = graph.call_function(_function(str(target)), args, kwargs)
        else:
            raise ValueError(f"a graph node of kind {op!r}")
        nodes[spec["name"]] = node
    rebuilt = torch.fx.GraphModule(root, graph)
    rebuilt.train(bool(tree["training"]))
    return rebuilt
