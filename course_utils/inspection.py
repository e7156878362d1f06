"""Look inside a model: parameter counts, per-layer tables, shapes and FLOPs.

Rules every function here keeps:

- the user's model is never moved, never changed (weights, train/eval mode) and never
  left with a hook: forward passes run on a *meta-device replica* that shares no memory
  with the model, so a multi-billion-parameter model is sized in about a second;
- a forward pass that fails raises :class:`ForwardPassError` naming the module that
  failed (its dotted name from ``named_modules``) and the shapes involved;
- an uninitialised lazy layer raises :class:`LazyModuleError` instead of a wrong count.

FLOPs here are ``2 × multiply-accumulates`` (one multiply and one add per MAC), as
PyTorch's ``FlopCounterMode`` counts them. Memory (``param_bytes``, ``training_bytes``) is
in :mod:`course_utils.memory`. Two private modules hold what this one shares: ``_meta``
(the meta replicas, the lazy-layer check) and ``_explain`` (the messages of the errors).
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils._explain import ForwardPassError, ShapeMismatchError, explain_failure
from course_utils._meta import META, LazyModuleError, check_initialised, meta_replica, to_meta
from course_utils.memory import param_bytes, training_bytes  # kept for old imports

__all__ = [
    "count_params", "param_table", "layer_table", "trace_shapes", "flops", "LayerTable",
    "LayerRow", "ParamTable", "ForwardPassError", "ShapeMismatchError", "LazyModuleError",
    "param_bytes", "training_bytes",
]
# In __all__ only so that old imports keep working; course_utils.memory owns them.
_KEPT_FOR_OLD_IMPORTS = ("param_bytes", "training_bytes")

# kept for old imports: the private names memory.py and receptive.py used to import from here
_check_initialised, _meta_replica, _to_meta = check_initialised, meta_replica, to_meta


# ---------------------------------------------------------------------------- counting


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model``; a tensor shared by several layers counts once.

    >>> count_params(nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5)))
    325
    >>> lstm = nn.LSTM(50, 50, num_layers=2)
    >>> count_params(lstm)
    40800
    """
    check_initialised(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _shape(value: Any) -> str:
    """A compact shape string: ``[1, 3, 28, 28]``, tuples as ``([..], [..])``."""
    if isinstance(value, torch.Tensor):
        return str(list(value.shape))
    if isinstance(value, (tuple, list)):
        parts = [_shape(v) for v in value]
        parts = [p for p in parts if p]
        return "(" + ", ".join(parts) + ")" if parts else ""
    return ""


def _fmt(n: int) -> str:
    return f"{n:,}"


@dataclass(frozen=True)
class ParamRow:
    name: str
    shape: tuple[int, ...]
    numel: int
    trainable: bool
    dtype: str


@dataclass
class ParamTable:
    """One row per parameter tensor (``named_parameters``), with a total."""

    rows: list[ParamRow]

    @property
    def total(self) -> int:
        return sum(r.numel for r in self.rows)

    @property
    def trainable(self) -> int:
        return sum(r.numel for r in self.rows if r.trainable)

    def __str__(self) -> str:
        width = max([len(r.name) for r in self.rows] + [9])
        lines = [f"{'parameter':<{width}}  {'shape':<16} {'count':>12}  trainable"]
        lines += [
            f"{r.name:<{width}}  {str(list(r.shape)):<16} {_fmt(r.numel):>12}  "
            f"{'yes' if r.trainable else 'no'}"
            for r in self.rows
        ]
        lines.append(f"{'total':<{width}}  {'':<16} {_fmt(self.total):>12}  "
                     f"({_fmt(self.trainable)} trainable)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td><code>{html.escape(r.name)}</code></td><td>{list(r.shape)}</td>"
            f"<td style='text-align:right'>{_fmt(r.numel)}</td>"
            f"<td>{'yes' if r.trainable else 'no'}</td></tr>"
            for r in self.rows
        )
        return (
            "<table><thead><tr><th>parameter</th><th>shape</th><th>count</th><th>trainable</th>"
            f"</tr></thead><tbody>{body}<tr><th>total</th><td></td>"
            f"<th style='text-align:right'>{_fmt(self.total)}</th>"
            f"<td>{_fmt(self.trainable)} trainable</td></tr></tbody></table>"
        )


def param_table(model: nn.Module) -> ParamTable:
    """Every parameter tensor with its shape and count; shared tensors are listed once.

    >>> table = param_table(nn.Linear(8, 4))
    >>> [(r.name, r.numel) for r in table.rows], table.total
    ([('weight', 32), ('bias', 4)], 36)
    """
    check_initialised(model)
    return ParamTable([
        ParamRow(name, tuple(p.shape), p.numel(), p.requires_grad, str(p.dtype).replace("torch.", ""))
        for name, p in model.named_parameters()
    ])


# ---------------------------------------------------------------------------- forward passes


def _make_inputs(
    input_size: Sequence[int] | Sequence[Sequence[int]] | None,
    input_data: Any,
    dtype: torch.dtype,
) -> tuple[Any, ...]:
    if (input_size is None) == (input_data is None):
        raise ValueError("give exactly one of input_size (a shape with the batch dimension, "
                         "e.g. (1, 3, 28, 28)) or input_data (tensors)")
    if input_data is not None:
        data = input_data if isinstance(input_data, tuple) else (input_data,)
        return tuple(to_meta(d) for d in data)
    sizes = input_size if isinstance(input_size[0], (tuple, list)) else [input_size]
    return tuple(torch.zeros(tuple(s), dtype=dtype, device=META) for s in sizes)


@dataclass
class LayerRow:
    """One module in a :class:`LayerTable`."""

    name: str
    type: str
    depth: int
    input_shape: str
    output_shape: str
    params: int
    trainable: int
    calls: int = 1


@dataclass
class LayerTable:
    """Per-module input/output shapes and parameters from one forward pass.

    ``rows`` lists modules in the order they ran; ``total_params`` counts every parameter
    of the model once (shared tensors included once). A container's row shows only its own
    parameters when its children are listed, and their sum when ``depth`` cuts them off,
    so the Params column adds up to the total (unless tensors are shared).

    The table is a sequence of its rows: ``len(table)``, ``table[0]``, ``table[-2:]`` and
    ``for row in table`` work like on ``table.rows``.
    """

    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    input_shapes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[LayerRow]:
        return iter(self.rows)

    def __getitem__(self, index: int | slice) -> LayerRow | list[LayerRow]:
        """A row by position (``table[0]``), or a list of rows for a slice."""
        return self.rows[index]

    def __str__(self) -> str:
        names = [("  " * (r.depth - 1)) + f"{r.name} ({r.type})" for r in self.rows]
        w = max([len(n) for n in names] + [14])
        wi = max([len(r.input_shape) for r in self.rows] + [11])
        wo = max([len(r.output_shape) for r in self.rows] + [12])
        header = f"{'Layer (type)':<{w}}  {'Input shape':<{wi}}  {'Output shape':<{wo}}  {'Params':>12}"
        rule = "─" * len(header)
        lines = [header, rule]
        for name, r in zip(names, self.rows, strict=True):
            lines.append(f"{name:<{w}}  {r.input_shape:<{wi}}  {r.output_shape:<{wo}}  "
                         f"{_fmt(r.params):>12}")
        lines += [rule, f"Total params: {_fmt(self.total_params)}",
                  f"Trainable params: {_fmt(self.trainable_params)}",
                  f"Non-trainable params: {_fmt(self.total_params - self.trainable_params)}"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td style='text-align:left;padding-left:{(r.depth - 1) * 1.2}em'>"
            f"<code>{html.escape(r.name)}</code> ({html.escape(r.type)})</td>"
            f"<td>{html.escape(r.input_shape)}</td><td>{html.escape(r.output_shape)}</td>"
            f"<td style='text-align:right'>{_fmt(r.params)}</td></tr>"
            for r in self.rows
        )
        return (
            "<table><thead><tr><th style='text-align:left'>Layer (type)</th><th>Input shape</th>"
            f"<th>Output shape</th><th>Params</th></tr></thead><tbody>{body}</tbody>"
            f"<tfoot><tr><th style='text-align:left'>Total params</th><td></td><td></td>"
            f"<th style='text-align:right'>{_fmt(self.total_params)}</th></tr>"
            f"<tr><td style='text-align:left'>Trainable params</td><td></td><td></td>"
            f"<td style='text-align:right'>{_fmt(self.trainable_params)}</td></tr></tfoot></table>"
        )


@contextmanager
def _recording(model: nn.Module) -> Iterator[tuple[dict[str, dict[str, Any]], list[str]]]:
    """Hooks that record each module's input/output and a stack of running modules;
    every hook is removed on exit, even when the forward pass raised."""
    records: dict[str, dict[str, Any]] = {}
    running: list[str] = []
    handles = []
    for name, module in model.named_modules():
        def pre_hook(mod: nn.Module, args: tuple, name: str = name) -> None:
            running.append(name)
            rec = records.setdefault(name, {"module": mod, "calls": 0})
            rec["input"] = _shape(args[0] if len(args) == 1 else args)
            rec["input_tensors"] = args

        def post_hook(mod: nn.Module, args: tuple, output: Any, name: str = name) -> None:
            running.pop()
            rec = records[name]
            rec["output"] = _shape(output)
            rec["calls"] += 1
            rec.pop("input_tensors", None)

        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    try:
        yield records, running
    finally:
        for handle in handles:
            handle.remove()


def _run(
    model: nn.Module, inputs: tuple[Any, ...], counter: FlopCounterMode | None = None,
) -> tuple[nn.Module, dict[str, dict[str, Any]]]:
    """One recorded forward pass on a meta replica (``counter``, if given, counts its FLOPs)."""
    replica = meta_replica(model)
    try:
        return replica, _forward(replica, inputs, counter)
    except ForwardPassError as error:
        if not _meta_unsupported(error.__cause__):
            raise
    # Rare: an operation with no meta implementation. Use a real copy on the model's device.
    device = next(iter(model.parameters()), torch.empty(0)).device
    replica = copy.deepcopy(model)
    real_inputs = tuple(
        torch.zeros(x.shape, dtype=x.dtype, device=device) if isinstance(x, torch.Tensor) else x
        for x in inputs
    )
    return replica, _forward(replica, real_inputs, counter)  # the counter restarts from 0


def _meta_unsupported(error: BaseException | None) -> bool:
    return isinstance(error, NotImplementedError) and "Meta" in str(error)


def _forward(
    replica: nn.Module, inputs: tuple[Any, ...], counter: FlopCounterMode | None = None,
) -> dict[str, dict[str, Any]]:
    counting: AbstractContextManager = nullcontext() if counter is None else counter
    with _recording(replica) as (records, running), counting:
        try:
            with torch.no_grad():
                replica(*inputs)
        except Exception as error:  # re-raised with the module's name and the shapes
            raise explain_failure(error, replica, records, running, inputs) from error
    return records


def layer_table(
    model: nn.Module,
    input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
    *,
    input_data: Any = None,
    depth: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> LayerTable:
    """A per-layer table from one forward pass on a meta copy of the model (no data allocated).

    Like :func:`trace_shapes`, it falls back to a real copy fed with zeros when an
    operation has no meta implementation.

    ``input_size`` includes the batch dimension, e.g. ``(1, 3, 28, 28)``; for integer
    inputs (token ids) pass ``dtype=torch.long`` or ``input_data``. ``depth`` limits how
    deep into nested modules the rows go (``None``: all). Modules that never ran (an
    unused layer) are not listed.

    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    >>> print(layer_table(model, (1, 8, 8)))  # doctest: +NORMALIZE_WHITESPACE
    Layer (type)    Input shape  Output shape        Params
    ───────────────────────────────────────────────────────
    0 (Flatten)     [1, 8, 8]    [1, 64]                  0
    1 (Linear)      [1, 64]      [1, 10]                650
    ───────────────────────────────────────────────────────
    Total params: 650
    Trainable params: 650
    Non-trainable params: 0

    A wrong input size names the layer that failed (here ``fc``, built for 28×28 images)::

        ShapeMismatchError: layer 'fc' (Linear, in_features=1568) received 2048 features.
          The model's input was 1×3×32×32; after the earlier layers the feature map is
          32×8×8 = 2048. ...
    """
    check_initialised(model)
    inputs = _make_inputs(input_size, input_data, dtype)
    _, records = _run(model, inputs)
    rows = []
    for name, rec in records.items():
        if not name or "output" not in rec:
            continue
        level = name.count(".") + 1
        if depth is not None and level > depth:
            continue
        module = rec["module"]
        leaf_or_cut = not list(module.children()) or (depth is not None and level == depth)
        own = module.parameters(recurse=leaf_or_cut)
        params = list(own)
        rows.append(LayerRow(
            name=name, type=type(module).__name__, depth=level, input_shape=rec["input"],
            output_shape=rec["output"], params=sum(p.numel() for p in params),
            trainable=sum(p.numel() for p in params if p.requires_grad), calls=rec["calls"],
        ))
    return LayerTable(
        rows=rows, total_params=count_params(model),
        trainable_params=count_params(model, trainable_only=True),
        input_shapes=[_shape(t) for t in inputs],
    )


def trace_shapes(model: nn.Module, *inputs: Any) -> LayerTable:
    """The shape entering and leaving every leaf layer, for the given example inputs.

    Runs one forward pass, with a hook on every module, on a copy of the model on the
    meta device: ``inputs`` may be real tensors (only their shapes and dtypes matter),
    no numbers are computed and the model is not touched. If an operation has no meta
    implementation, it falls back to a real copy on the model's device fed with zeros
    (that pass does compute and allocate). A failing layer raises
    :class:`ForwardPassError` naming it.

    >>> cnn = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.MaxPool2d(2), nn.Flatten())
    >>> [(r.name, r.output_shape) for r in trace_shapes(cnn, torch.zeros(1, 3, 28, 28)).rows]
    [('0', '[1, 16, 28, 28]'), ('1', '[1, 16, 14, 14]'), ('2', '[1, 3136]')]
    """
    if not inputs:
        raise ValueError(
            "trace_shapes needs at least one example input, e.g. torch.zeros(1, 3, 28, 28)")
    table = layer_table(model, input_data=tuple(inputs))
    table.rows = [r for r in table.rows if not list(_submodule(model, r.name).children())]
    return table


def _submodule(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name) if name else model


def flops(model: nn.Module, *inputs: Any, by_module: bool = False) -> int | dict[str, int]:
    """Floating-point operations of one forward pass, counted on the meta device.

    FLOPs = 2 × multiply-accumulates (MACs): ``nn.Linear(in, out)`` on one example costs
    ``in·out`` MACs, i.e. ``2·in·out`` FLOPs. Only matrix products and convolutions are
    counted (as PyTorch's ``FlopCounterMode`` does); activations, pooling and
    normalisation are negligible next to them. Running on ``meta`` also counts an LSTM
    correctly (on the CPU PyTorch's counter reports 0 for it). ``by_module=True`` returns
    ``{module name: FLOPs}`` for every module (totals include submodules; ``""`` is the model).
    Like :func:`layer_table`, it falls back to a real copy fed with zeros when an operation
    has no meta implementation.

    >>> flops(nn.Linear(10, 20), torch.zeros(1, 10))
    400
    >>> flops(nn.LSTM(50, 50, num_layers=2, batch_first=True), torch.zeros(1, 1, 50))
    80000
    """
    if not inputs:
        raise ValueError("flops needs at least one example input, e.g. torch.zeros(1, 3, 32, 32)")
    check_initialised(model)
    counter = FlopCounterMode(display=False)
    replica, _ = _run(model, tuple(to_meta(x) for x in inputs), counter)
    if not by_module:
        return int(counter.get_total_flops())
    root = type(replica).__name__
    counts = counter.get_flop_counts()
    result = {}
    for key, ops in counts.items():
        if key == "Global":
            result[""] = int(sum(ops.values()))
        elif key.startswith(root + "."):
            result[key[len(root) + 1:]] = int(sum(ops.values()))
    result.setdefault("", int(counter.get_total_flops()))
    return result
