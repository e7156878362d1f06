"""Runs in a kernel: a model as plain data (``describe``) and back (``rebuild``).

For the "design a model" questions the learner's kernel describes the model it built: its
module tree (torch.nn classes, plain settings, every weight; a module or tensor used twice
is written once) and, when one of its modules is not a torch.nn class, the ``torch.fx``
graph of its forward in training and, where it differs, in eval mode. A reference kernel
started for that learner rebuilds it from torch.nn classes and allowlisted functions,
methods and attributes; nothing in the description is executed, and every number a
forward writes, and every layer setting that is not a size, counts towards ``state_size``.

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
>>> rebuilt = rebuild(describe(model))
>>> bool(torch.equal(rebuilt(torch.ones(1, 2)), model(torch.ones(1, 2)))), state_size(rebuilt)
(True, 9)
"""

from __future__ import annotations

import base64
import json
import keyword
import math
from typing import Any

from course_utils.grading.allowlists import ALLOWED, ATTRIBUTES, METHODS, SIZES

__all__ = ["describe", "rebuild", "state_size", "beside_weights", "MAX_CONSTANTS",
           "MAX_LAYER_NUMBERS"]

MAX_CONSTANTS = 256  # numbers a rebuilt forward may hold outside parameters and buffers
MAX_LAYER_NUMBERS = 32  # numbers in one layer's settings (a Conv2d has 17)
MAX_WHOLE = 2**31  # a whole number in a forward or a setting is smaller than this
# The only buffers rebuilt: a batch norm's statistics (red team, round 5: weights packed into
# a float64 buffer and read back as float16 counted as a quarter of their number).
_NORM_BUFFERS = frozenset({"running_mean", "running_var", "num_batches_tracked"})
_FLOATS = ("float32", "float64", "float16", "bfloat16")
MAX_NODES = 2_000


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
    """Numbers in the model's parameters and buffers (shared tensors counted once); for a
    rebuilt model also the numbers its forward and its layers' settings hold beside them
    (``rebuild``'s ``grader_constants``: every number its forward writes, and the settings
    of its layers that are not sizes, since a weight could hide there)."""
    seen = {id(t): t.numel() for t in (*model.parameters(), *model.buffers())}
    extra = getattr(model, "grader_constants", 0)
    return sum(seen.values()) + (extra if isinstance(extra, int) else 0)


# A module is described by its class (a torch.nn class only), its plain attributes, its
# parameters and buffers, and its children; a root whose class is not in torch.nn is traced
# with torch.fx, and its graph is described node by node with functions named, not pickled.
_PLAIN = (int, float, str, bool, type(None))


def _is_plain(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def _module_tree(module: Any, memo: dict | None = None, path: str = "") -> dict:
    """A module as plain data; a module or tensor met before (weight sharing, tied weights)
    is ``{"$same": "its first path"}``, so the rebuilt model shares it too."""
    memo = {} if memo is None else memo
    if id(module) in memo:
        return {"$same": memo[id(module)]}
    memo[id(module)] = path

    def tensor(key: str, value: Any, extra: list) -> Any:
        if value is None:
            return None
        where = f"{path}.{key}" if path else key
        if id(value) in memo:
            return {"$same": memo[id(value)]}
        memo[id(value)] = where
        return [*_tensor_text(value), *extra(value)]

    cls = type(module)
    attrs = {k: (list(v) if isinstance(v, tuple) else v, isinstance(v, tuple))
             for k, v in vars(module).items()
             if not k.startswith("__") and _is_plain(v) and k != "training"}
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "training": module.training,
            "attrs": {k: [v, t] for k, (v, t) in attrs.items()},
            "params": {k: tensor(k, p, lambda p: []) for k, p in module._parameters.items()},
            "frozen": sorted(k for k, p in module._parameters.items()
                             if p is not None and not p.requires_grad),
            "buffers": {k: tensor(k, b, lambda b: [str(b.dtype)])
                        for k, b in module._buffers.items()},
            "children": {k: (None if c is None else _module_tree(
                c, memo, f"{path}.{k}" if path else k)) for k, c in module._modules.items()}}


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
    """The make-up of ``model`` as plain data, for the reference kernel to ``rebuild``: its
    module tree and, when any of its modules is not a torch.nn class, the ``torch.fx`` graph
    of its forward in training mode and, where it differs, in eval mode."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    if all(type(m).__module__.startswith("torch.nn.") for m in model.modules()):
        return {"tree": _module_tree(model), "graph": None}
    import torch.fx

    was, graphs, traced = model.training, {}, None
    patched = _record_len(model)
    try:
        for mode in (True, False):
            model.train(mode)
            traced = torch.fx.symbolic_trace(model)
            graphs[mode] = [{"op": n.op, "name": n.name, "target": _target(n),
                             "args": _arg(n.args), "kwargs": _arg(n.kwargs)}
                            for n in traced.graph.nodes]
    except Exception as error:
        raise TypeError(f"the grader rebuilds your model from its layers and forward, and "
                        f"torch.fx could not trace its forward ({type(error).__name__}: "
                        f"{str(error)[:200]})") from None
    finally:
        model.train(was)
        for key in patched:
            _wrapped_functions().pop(key, None)
    tree = _module_tree(traced)
    tree["class"], tree["training"], tree["attrs"] = "torch.nn.Module", was, {}  # fx's own
    return {"tree": tree, "graph": graphs[True],
            "graph_eval": None if graphs[False] == graphs[True] else graphs[False]}


def _wrapped_functions() -> dict:
    """torch.fx's table of the names it records as calls (``torch.fx.wrap`` fills it)."""
    import torch.fx._symbolic_trace as tracing

    return getattr(tracing, "_wrapped_fns_to_patch", {})


def _record_len(model: Any) -> dict:
    """Let ``torch.fx`` record ``len(x)`` in the forwards of ``model`` (``x.view(len(x), -1)``
    is a common way to flatten), as ``torch.fx.wrap("len")`` would in their module."""
    added = {}
    for module in model.modules():
        found = getattr(getattr(type(module), "forward", None), "__globals__", None)
        if isinstance(found, dict) and (id(found), "len") not in _wrapped_functions():
            _wrapped_functions()[(id(found), "len")] = found
            added[(id(found), "len")] = found
    return added


def _attribute(obj: Any, name: str) -> Any:
    """``getattr`` for a rebuilt graph (``x.shape`` traces to it): a few tensor facts only."""
    if name not in ATTRIBUTES:
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
    if attr not in ALLOWED.get(module_name, ()):
        raise ValueError("the grader does not rebuild calls to a function it does not list")
    return getattr(importlib.import_module(module_name), attr)


def _numbers(value: Any) -> int:
    """How many numbers a plain value (or a described argument) holds, a number per
    character of text; a whole number too large to be a size is refused (red team, round 4:
    weights packed into huge integers and unpacked with ``%`` and ``//``)."""
    if value is None:
        return 0
    if isinstance(value, bool):  # a True or False is a number too (a bit of a weight)
        return 1
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int):
        if abs(value) >= MAX_WHOLE:
            raise ValueError("a whole number too large to be a size or a dimension")
        return 1
    if isinstance(value, float):
        return 1
    if isinstance(value, (list, tuple)):
        return sum(_numbers(v) for v in value)
    if isinstance(value, dict):
        return sum(_numbers(v) for k, v in value.items() if k not in ("$node", "$dtype",
                                                                          "tuple"))
    return 0


def _settings(tree: dict) -> list:
    """The numbers of a described module tree's settings that are not sizes."""
    found = [v for k, (v, _) in tree.get("attrs", {}).items()
             if k not in SIZES and not isinstance(v, (str, bool))]  # flags are not data
    return found + [_settings(c) for c in tree.get("children", {}).values() if c]


def _path(target: Any) -> str:
    """A submodule or attribute path of the rebuilt model: public names only."""
    parts = str(target).split(".")
    if not all((p.isidentifier() or p.isdigit()) and not p.startswith("_") for p in parts):
        raise ValueError(f"a graph node that reads {target!r}")
    return str(target)


def _build_tree(spec: dict, seen: dict | None = None, path: str = "") -> Any:
    import importlib

    import torch

    seen = {} if seen is None else seen
    if "$same" in spec:  # a module shared with an earlier place
        if spec["$same"] not in seen:
            raise ValueError("a shared module the description does not hold")
        return seen[spec["$same"]]

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
    seen[path] = module
    for key, (value, is_tuple) in spec["attrs"].items():
        if not key.isidentifier() or key.startswith("__") or key in ("forward", "training"):
            raise ValueError(f"an attribute named {key!r}")
        setattr(module, key, _tuples(value) if is_tuple else value)
    _fill(module, spec, seen, path)
    for key, child in spec["children"].items():
        where = f"{path}.{key}" if path else key
        module.add_module(key, None if child is None else _build_tree(child, seen, where))
    module.train(bool(spec["training"]))
    return module


def _fill(module: Any, spec: dict, seen: dict, path: str) -> None:
    """Register the described parameters and buffers on ``module`` (shared ones reused)."""
    import torch

    frozen = set(spec.get("frozen", ()))

    def tensor(key: str, item: Any, make: Any) -> Any:
        if item is None:
            return None
        if isinstance(item, dict):
            if item.get("$same") not in seen:
                raise ValueError("a shared tensor the description does not hold")
            return seen[item["$same"]]
        value = make(item)
        seen[f"{path}.{key}" if path else key] = value
        return value

    for key, item in spec["params"].items():
        module.register_parameter(key, tensor(key, item, lambda i, key=key: torch.nn.Parameter(
            _tensor_from(i[:2], torch.float32), requires_grad=key not in frozen)))
    if spec["buffers"] and not (isinstance(module, torch.nn.modules.batchnorm._NormBase)
                                and set(spec["buffers"]) <= _NORM_BUFFERS):
        raise ValueError("buffers other than a batch norm's running statistics")
    for key, item in spec["buffers"].items():
        kind = torch.int64 if key == "num_batches_tracked" else torch.float32
        module.register_buffer(key, tensor(key, item, lambda i, kind=kind: _tensor_from(
            i[:2], kind)))


def _dtype(name: Any) -> Any:
    """A floating-point dtype (a conversion to whole numbers would round, as floor does)."""
    import torch

    if str(name).split(".")[-1] not in _FLOATS:
        raise ValueError("a dtype the grader does not rebuild")
    return getattr(torch, str(name).split(".")[-1])





def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _name(text: Any) -> bool:
    return (isinstance(text, str) and text.isidentifier() and not keyword.iskeyword(text)
            and not text.startswith("_"))


def _unarg(value: Any, nodes: dict) -> Any:

    if isinstance(value, dict):
        if "$node" in value:
            return nodes[value["$node"]]
        if "$seq" in value:
            items = [_unarg(v, nodes) for v in value["$seq"]]
            return tuple(items) if value.get("tuple") else items
        if "$map" in value:  # keyword names are pasted into the generated code too
            if not all(_name(k) for k in value["$map"]):
                raise ValueError("a keyword argument whose name is not a plain identifier")
            return {k: _unarg(v, nodes) for k, v in value["$map"].items()}
        if "$slice" in value:
            return slice(*(_unarg(v, nodes) for v in value["$slice"]))
        if "$ellipsis" in value:
            return Ellipsis
        if "$dtype" in value:
            return _dtype(value["$dtype"])
        raise ValueError("an argument the grader does not know")
    return value


def beside_weights(description: dict) -> int:
    """What a described model holds beside its parameters and buffers, counted towards a
    budget: every number, truth value and character its forward writes, every operation it
    performs beside its layers (red team, round 6: weights computed from ``x.dim()`` and
    ``True`` by doubling), and every layer setting that is not a size. Each mode's graph
    holds its own copy, so the larger one counts."""
    graphs = (description.get("graph"), description.get("graph_eval"))
    written = max(_numbers([[n.get("args"), n.get("kwargs")] for n in graph or []])
                  + sum(n.get("op") in ("call_function", "call_method") for n in graph or [])
                  for graph in graphs)
    return written + _numbers(_settings(description["tree"]))


def rebuild(description: Any) -> Any:
    """The model ``describe`` described, built from torch.nn classes and named functions
    only (the description is the learner's data: nothing in it is executed)."""
    import torch

    if isinstance(description, str):
        description = json.loads(description)
    if isinstance(description, dict) and "$error" in description:
        raise ValueError(description["$error"])
    tree = description["tree"]
    graph_spec = [*(description["graph"] or []), *(description.get("graph_eval") or [])]
    arguments = [[n.get("args"), n.get("kwargs")] for n in graph_spec]
    constants = _numbers(arguments)
    if constants > MAX_CONSTANTS or len(graph_spec) > MAX_NODES:
        raise ValueError(f"the model's forward holds {constants} numbers outside its "
                         f"parameters and buffers (at most {MAX_CONSTANTS})")
    hidden = beside_weights(description)
    if description["graph"] is None:
        rebuilt = _build_tree(tree)
        rebuilt.grader_constants = hidden
        return rebuilt
    import torch.fx

    seen: dict[str, Any] = {}
    root = torch.nn.Module()
    seen[""] = root
    _fill(root, tree, seen, "")
    for key, child in tree["children"].items():
        root.add_module(key, None if child is None else _build_tree(child, seen, key))
    stored = {*dict(root.named_parameters(remove_duplicate=False)),
              *dict(root.named_buffers(remove_duplicate=False))}
    train = torch.fx.GraphModule(root, _graph(description["graph"], stored))
    rebuilt = train
    if description.get("graph_eval"):
        rebuilt = _modal(train, torch.fx.GraphModule(root, _graph(description["graph_eval"],
                                                                  stored)))
    rebuilt.train(bool(tree["training"]))
    rebuilt.grader_constants = hidden
    return rebuilt


def _graph(spec_nodes: list, stored: set) -> Any:
    """A torch.fx graph from described nodes (allowlisted targets only)."""
    import torch.fx

    graph = torch.fx.Graph()
    nodes: dict[str, Any] = {}
    for spec in spec_nodes:
        op, target = spec["op"], spec["target"]
        args, kwargs = _unarg(spec["args"], nodes), _unarg(spec["kwargs"], nodes)
        if op == "placeholder":  # its name is pasted into the generated forward's code
            if not _name(target):
                raise ValueError("an input whose name is not a plain identifier")
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
            if str(target) not in METHODS:
                raise ValueError(f"the grader does not rebuild calls to the method {target!r}")
            if str(target) == "view" and any(isinstance(a, torch.dtype) for a in args):
                raise ValueError("a view of a tensor's bits as another dtype")
            node = graph.call_method(str(target), args, kwargs)
        elif op == "call_function":
            node = graph.call_function(_function(str(target)), args, kwargs)
        else:
            raise ValueError(f"a graph node of kind {op!r}")
        nodes[spec["name"]] = node
    return graph


def _modal_class() -> Any:
    import torch

    class Modal(torch.nn.Module):
        """A rebuilt model whose forward differs in training and in eval mode (its layers
        and weights are shared by both graphs)."""

        def __init__(self, train: Any, evaluate: Any) -> None:
            super().__init__()
            self.train_graph, self.eval_graph = train, evaluate

        def forward(self, *args: Any) -> Any:
            return (self.train_graph if self.training else self.eval_graph)(*args)

    return Modal


def _modal(train: Any, evaluate: Any) -> Any:
    return _modal_class()(train, evaluate)
