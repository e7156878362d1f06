"""How far does a pixel reach? The receptive field of a convolutional network.

The receptive field of an output position is the patch of input pixels that can influence
it; the *stride* (or jump) is how many input pixels apart two neighbouring output positions
are. Each layer with kernel ``k``, stride ``s``, dilation ``d`` grows them as

    size ← size + (k − 1)·d·jump,        jump ← jump·s.

:func:`receptive_field` applies these rules to every operation of one forward pass on a
meta replica (nothing is allocated, the model is untouched). Because it follows the tensors
rather than a list of layers, it works for residual and branching models: where branches
meet (``out + identity``, ``torch.cat``) the field is the union of the branches' fields.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from course_utils._meta import check_initialised, meta_replica

__all__ = ["receptive_field", "ReceptiveField", "LayerField"]


@dataclass(frozen=True)
class _Axis:
    size: float   # pixels one position sees along this axis
    jump: float   # input pixels between neighbouring positions
    start: float  # centre of position 0's field, in input pixel coordinates

    def kernel(self, k: int, s: int, p: int, d: int) -> _Axis:
        return _Axis(self.size + (k - 1) * d * self.jump, self.jump * s,
                     self.start + ((k - 1) * d / 2 - p) * self.jump)

    def collapsed(self, positions: int) -> _Axis:
        """The union of the fields of ``positions`` neighbouring positions."""
        return _Axis(self.size + (positions - 1) * self.jump, self.jump,
                     self.start + (positions - 1) * self.jump / 2)


@dataclass(frozen=True)
class _Info:
    axes: tuple[_Axis, ...]
    spatial: bool  # False once the positions are mixed (flatten, global pooling, mean)


def _union(infos: Sequence[_Info], positions: Sequence[int]) -> tuple[_Axis, ...]:
    """Axis-wise union of fields seen by the same output position (branches that meet)."""
    result = []
    for axis, n in enumerate(positions):
        parts = [info.axes[axis] for info in infos]
        local = [a for a, info in zip(parts, infos) if info.spatial] or parts
        jump = max(a.jump for a in local)
        widths = []
        for i in (0, max(n - 1, 0)):  # the union is widest at one of the two ends
            lo = min(a.start + (i * a.jump if inf.spatial else 0) - a.size / 2
                     for a, inf in zip(parts, infos))
            hi = max(a.start + (i * a.jump if inf.spatial else 0) + a.size / 2
                     for a, inf in zip(parts, infos))
            widths.append(hi - lo)
        result.append(_Axis(max(widths), jump, local[0].start))
    return tuple(result)


def _arguments(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The operator's arguments by name, defaults filled in."""
    bound = {}
    for i, arg in enumerate(func._schema.arguments):
        if i < len(args):
            bound[arg.name] = args[i]
        elif arg.name in kwargs:
            bound[arg.name] = kwargs[arg.name]
        elif arg.has_default_value():
            bound[arg.name] = arg.default_value
    return bound


def _per_axis(value: Any, n: int, default: int) -> list[int]:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return [default] * n
    if isinstance(value, int):
        return [value] * n
    values = [int(v) for v in value]
    return values * n if len(values) == 1 else values


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


class _Tracker(TorchDispatchMode):
    """Follows every operation and attaches a receptive field to each tensor it produces."""

    def __init__(self, n_spatial: int) -> None:
        super().__init__()
        self.n = n_spatial
        self.info: dict[int, _Info] = {}
        self.keep: list[torch.Tensor] = []  # keeps tensors alive so no id() is reused

    def track(self, tensor: torch.Tensor, info: _Info) -> None:
        self.info[id(tensor)] = info
        self.keep.append(tensor)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in _tensors((args, kwargs)) if id(t) in self.info]
        if inputs:
            info = self._rule(func, args, kwargs, inputs, out)
            for t in _tensors(out):
                self.track(t, info)
        return out

    def _positions(self, t: torch.Tensor) -> tuple[int, ...]:
        return tuple(t.shape[-self.n:])

    def _rule(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
              inputs: list[torch.Tensor], out: Any) -> _Info:
        name = func.overloadpacket.__name__
        first = inputs[0]
        info = self.info[id(first)]
        if info.spatial and name in ("convolution", "_convolution") or \
                name.startswith(("max_pool", "avg_pool")):
            return _Info(self._kernel_rule(name, func, args, kwargs), spatial=True)
        if info.spatial and "adaptive" in name:
            return self._adaptive_rule(name, first, _tensors(out)[0])
        infos = [self.info[id(t)] for t in inputs]
        result = _tensors(out)[0]
        spatial = [t for t, i in zip(inputs, infos) if i.spatial]
        if not spatial:  # positions already mixed: stays mixed
            return _Info(_union(infos, [1] * self.n), spatial=False)
        ref = spatial[0]
        if result.dim() == ref.dim() and self._positions(result) == self._positions(ref):
            return _Info(_union(infos, self._positions(ref)), spatial=True)  # elementwise, cat
        if result.dim() < ref.dim() or all(s == 1 for s in self._positions(result)):
            collapsed = [_Info(tuple(a.collapsed(n) for a, n in
                                     zip(i.axes, self._positions(t))), spatial=False)
                         if i.spatial else i for t, i in zip(inputs, infos)]
            return _Info(_union(collapsed, [1] * self.n), spatial=False)  # flatten, mean
        raise NotImplementedError(
            f"receptive_field does not know how '{func}' moves spatial positions "
            f"(input {list(ref.shape)} → output {list(result.shape)}); it handles "
            "convolutions, pooling, element-wise operations, concatenation and flattening.")

    def _kernel_rule(self, name: str, func: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> tuple[_Axis, ...]:
        a = _arguments(func, args, kwargs)
        n = self.n
        if name.endswith("convolution"):
            if a.get("transposed"):
                raise NotImplementedError(
                    "receptive_field does not handle transposed convolutions (upsampling)")
            kernel = list(a["weight"].shape[2:])
            stride = _per_axis(a.get("stride"), n, 1)
        else:
            kernel = _per_axis(a["kernel_size"], n, 1)
            stride = _per_axis(a.get("stride"), n, 0)
            stride = [s or k for s, k in zip(stride, kernel)]  # a pool's default stride is k
        padding = _per_axis(a.get("padding"), n, 0)
        dilation = _per_axis(a.get("dilation"), n, 1)
        axes = self.info[id(a.get("input", a.get("self")))].axes
        return tuple(ax.kernel(k, s, p, d)
                     for ax, k, s, p, d in zip(axes, kernel, stride, padding, dilation))

    def _adaptive_rule(self, name: str, x: torch.Tensor, out: torch.Tensor) -> _Info:
        sizes_in, sizes_out = self._positions(x), self._positions(out)
        info = self.info[id(x)]
        if all(o == 1 for o in sizes_out):
            return _Info(tuple(a.collapsed(n) for a, n in zip(info.axes, sizes_in)), spatial=False)
        if any(i % o for i, o in zip(sizes_in, sizes_out)):
            raise ValueError(
                f"{name} from {list(sizes_in)} to {list(sizes_out)} uses windows of unequal "
                "sizes; choose an input size whose feature map divides evenly, or pass the "
                "layers before the adaptive pooling.")
        return _Info(tuple(a.kernel(i // o, i // o, 0, 1)
                           for a, i, o in zip(info.axes, sizes_in, sizes_out)), spatial=True)


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class LayerField:
    """The receptive field at the output of one module."""

    name: str
    type: str
    size: int | float
    stride: int | float
    spatial: bool


@dataclass
class ReceptiveField:
    """The receptive field of a model's output.

    ``size``: pixels an output position sees (the largest over the spatial axes);
    ``stride``: input pixels between neighbouring output positions; ``sizes``/``strides``
    per axis; ``spatial``: False when the output no longer has positions (a classifier: its
    field is the union over all positions of the last feature map); ``layers``: the field
    after each module, in the order they ran.
    """

    size: int | float
    stride: int | float
    sizes: tuple[int | float, ...]
    strides: tuple[int | float, ...]
    spatial: bool
    input_shape: tuple[int, ...]
    layers: list[LayerField] = field(default_factory=list)
    centres: tuple[float, ...] = ()        # centre of position 0's field, per axis (pixels)
    positions: tuple[int, ...] = ()        # output positions per axis (() if not spatial)

    def _seen_per_axis(self) -> list[list[int]]:
        """For each axis, how many input pixels each output position's field contains."""
        seen = []
        for size, jump, centre, n, length in zip(self.sizes, self.strides, self.centres,
                                                 self.positions, self.input_shape[2:]):
            lo = [centre + i * jump - size / 2 for i in range(n)]
            seen.append([max(0, min(length, math.floor(a + size + 0.5)) - max(0, math.ceil(a + 0.5)))
                         for a in lo])
        return seen

    def whole_input_share(self) -> float:
        """Share of the output positions whose field contains every input pixel.

        >>> rf = receptive_field(nn.Conv2d(1, 1, 5, padding=2), (1, 1, 4, 4))
        >>> rf.whole_input_share()  # only the centre 2×2 of the 4×4 positions see it all
        0.25
        """
        if not self.spatial:
            return 1.0 if self.covers_input else 0.0
        share = 1.0
        for counts, length in zip(self._seen_per_axis(), self.input_shape[2:]):
            share *= sum(c == length for c in counts) / len(counts)
        return share

    def least_seen_share(self) -> float:
        """The smallest share of the input's pixels that any output position sees.

        >>> receptive_field(nn.Conv2d(1, 1, 5, padding=2), (1, 1, 4, 4)).least_seen_share()
        0.5625
        """
        if not self.spatial:
            return 1.0 if self.covers_input else 0.0
        share = 1.0
        for counts, length in zip(self._seen_per_axis(), self.input_shape[2:]):
            share *= min(counts) / length
        return share

    @property
    def covers_input(self) -> bool:
        """True when one output position can see the whole input."""
        return all(s >= n for s, n in zip(self.sizes, self.input_shape[2:]))

    def __str__(self) -> str:
        return (f"receptive field {self.size} px, stride {self.stride} px "
                f"(input {'×'.join(map(str, self.input_shape[2:]))})")


def receptive_field(model: nn.Module, input_shape: Sequence[int], *,
                    dtype: torch.dtype = torch.float32) -> ReceptiveField:
    """Receptive field and stride of ``model``'s output, for an input of ``input_shape``.

    ``input_shape`` includes the batch and channel dimensions, e.g. ``(1, 3, 224, 224)``;
    the trailing dimensions are the spatial ones (one for 1-D signals, two for images).
    ``dtype`` is the input's (``torch.long`` for token ids). Operations that move positions
    in ways other than convolution, pooling, element-wise arithmetic, concatenation and
    flattening (upsampling, transposed convolutions, an embedding's new axis) raise
    ``NotImplementedError`` naming the operation.

    >>> convs = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    ...                       nn.Conv2d(8, 8, 3, padding=1))
    >>> rf = receptive_field(convs, (1, 3, 32, 32))
    >>> rf.size, rf.stride
    (8, 2)
    >>> [(layer.name, layer.size) for layer in rf.layers]
    [('0', 3), ('1', 3), ('2', 4), ('3', 8)]
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 3:
        raise ValueError(f"input_shape {shape} needs batch, channel and at least one spatial "
                         "dimension, e.g. (1, 3, 224, 224)")
    check_initialised(model)
    replica = meta_replica(model)
    n = len(shape) - 2
    tracker = _Tracker(n)
    layers: list[LayerField] = []

    def record(name: str, module: nn.Module) -> Any:
        def hook(_: nn.Module, __: Any, output: Any) -> None:
            outs = [t for t in _tensors(output) if id(t) in tracker.info]
            if outs and name:
                info = tracker.info[id(outs[0])]
                layers.append(LayerField(name, type(module).__name__,
                                         _whole(max(a.size for a in info.axes)),
                                         _whole(max(a.jump for a in info.axes)), info.spatial))
        return module.register_forward_hook(hook)

    handles = [record(name, m) for name, m in replica.named_modules()]
    x = torch.zeros(shape, device="meta", dtype=dtype)
    tracker.track(x, _Info(tuple(_Axis(1, 1, 0.0) for _ in range(n)), spatial=True))
    try:
        with torch.no_grad(), tracker:
            out = replica(x)
    finally:
        for h in handles:
            h.remove()
    outs = [t for t in _tensors(out) if id(t) in tracker.info]
    if not outs:
        raise ValueError("the model's output does not depend on its input")
    info = tracker.info[id(outs[0])]
    sizes = tuple(_whole(a.size) for a in info.axes)
    strides = tuple(_whole(a.jump) for a in info.axes)
    positions = tuple(outs[0].shape[-n:]) if info.spatial else ()
    return ReceptiveField(max(sizes), max(strides), sizes, strides, info.spatial, shape, layers,
                          centres=tuple(a.start for a in info.axes), positions=positions)
