"""Growing a network without changing what it computes (Net2Net), and keeping the optimizer in step.

- :func:`net2deeper` inserts an identity-initialised layer after a layer and its activation;
- :func:`net2deeper_residual` adds a residual branch whose last layer starts at zero: exact
  for any activation and with BatchNorm;
- :func:`net2wider` adds units to a layer by copying existing ones (Chen, Goodfellow & Shlens,
  *Net2Net*, ICLR 2016) and rescales the next layer so the output is unchanged;
- :func:`add_to_optimizer` and :func:`replace_in_optimizer` tell an optimizer about new
  parameters: it only ever updates the tensors it was given when it was built (they live in
  the private ``course_utils._optim``, with the state carrying ``net2wider`` uses);
- :class:`GrowingMLP` is a ReLU MLP with ``.deepen()`` and ``.widen()`` methods.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import nn

from course_utils._optim import Remap, add_to_optimizer, carry_state, replace_in_optimizer

__all__ = [
    "net2deeper", "net2wider", "add_to_optimizer", "replace_in_optimizer", "GrowingMLP",
    "Growth", "IDEMPOTENT_ACTIVATIONS", "Widened", "Residual", "net2deeper_residual",
]

# φ(φ(v)) == φ(v) for every input: ReLU is max(v, 0); ReLU6 and Hardtanh clamp to an
# interval, and clamping twice is clamping once. Not idempotent: Tanh, Sigmoid, GELU, SiLU,
# ELU, LeakyReLU (a·(a·v) != a·v for v < 0), Hardsigmoid (it maps [0, 1] to [0.5, 0.67]).
IDEMPOTENT_ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Identity)

ActivationLike = type[nn.Module] | Callable[[], nn.Module] | nn.Module


class Growth(NamedTuple):
    """What a growth step changed: parameters to drop from the optimizer and ones to add.

    Unpack it into :func:`replace_in_optimizer`: ``replace_in_optimizer(opt, *growth)``.
    """

    old: list[nn.Parameter]
    new: list[nn.Parameter]


def _kernel_hw(size: int | tuple[int, ...]) -> tuple[int, int]:
    """A kernel size as (height, width)."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _make_activation(activation: ActivationLike) -> nn.Module:
    module = copy.deepcopy(activation) if isinstance(activation, nn.Module) else activation()
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"activation must be an nn.Module class such as nn.ReLU (or an instance), "
            f"got {activation!r}, which made {type(module).__name__}"
        )
    return module


def _is_idempotent(act: nn.Module) -> bool:
    """Known activations by type; any other one by a numerical probe on [-20, 20]."""
    if isinstance(act, IDEMPOTENT_ACTIVATIONS):
        return True
    probe = torch.cat([torch.linspace(-20, 20, 801), torch.tensor([-1e3, 1e3])])
    with torch.no_grad():
        once = act(probe.clone())
        twice = act(once.clone())
    return bool(torch.allclose(once, twice, rtol=1e-5, atol=1e-6))


def _square_layer(layer: nn.Module, kernel_size: int | tuple[int, int] | None) -> nn.Module:
    """A freshly initialised out→out layer of the same kind as ``layer`` (same size output)."""
    factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    if isinstance(layer, nn.Linear):
        return nn.Linear(layer.out_features, layer.out_features, **factory)
    if isinstance(layer, nn.Conv2d):
        kh, kw = _kernel_hw(kernel_size or layer.kernel_size)
        channels = layer.out_channels
        return nn.Conv2d(channels, channels, (kh, kw), padding=(kh // 2, kw // 2), **factory)
    raise TypeError(f"no square layer for {type(layer).__name__}")


def _identity_like(layer: nn.Module, kernel_size: int | tuple[int, int] | None) -> nn.Module:
    """An out→out layer of the same kind as ``layer`` that passes its input through unchanged."""
    new = _square_layer(layer, kernel_size)
    with torch.no_grad():
        if isinstance(new, nn.Linear):
            new.weight.copy_(torch.eye(new.out_features, dtype=new.weight.dtype))
        else:
            nn.init.dirac_(new.weight)
        new.bias.zero_()
    return new


def net2deeper(
    layer: nn.Module, activation: ActivationLike = nn.ReLU, *, approximate: bool = False,
    kernel_size: int | tuple[int, int] | None = None,
) -> nn.Sequential:
    """Return ``nn.Sequential(layer, activation(), new_layer)`` with ``new_layer`` = identity.

    Use it where the network computes ``φ(layer(x))``: the grown part computes
    ``φ(new_layer(φ(layer(x)))) = φ(φ(layer(x)))``, which equals ``φ(layer(x))`` when φ is
    idempotent. ``layer`` is reused (not copied), so only ``new_layer``'s parameters are new.

    - ``nn.Linear(i, o)``: ``new_layer`` is ``Linear(o, o)`` with identity weights, zero bias.
    - ``nn.Conv2d``: ``new_layer`` is ``Conv2d(o, o, k)`` initialised with ``nn.init.dirac_``,
      stride 1, groups 1, padding ``k // 2``; ``k`` is ``kernel_size`` or ``layer``'s kernel
      size, and must be odd (an even kernel has no centre, so the output would shift).
    - Accepted activations: ReLU, ReLU6, Hardtanh, Identity, and any other module that passes
      a numerical check φ(φ(v)) = φ(v) on a probe tensor. Tanh, Sigmoid, GELU, SiLU,
      LeakyReLU... are refused unless ``approximate=True``, and then the change is not small:
      on lesson 07's trained digits MLP, Tanh moves the class scores by about 20 % of their
      size and SiLU by about 4 % (under 1 % of the predictions flip there; other models flip
      more). For those activations use :func:`net2deeper_residual`, which is exact.
    - In a Conv→BatchNorm→ReLU block pass the conv, but insert the result's new layer after
      the block's ReLU (``block.append(new)``), never between the conv and its BatchNorm: there
      the inserted ReLU would act before the BatchNorm and change the output.

    >>> torch.manual_seed(0) and None
    >>> layer = nn.Linear(3, 4)
    >>> before = nn.Sequential(layer, nn.ReLU())
    >>> after = nn.Sequential(net2deeper(layer), nn.ReLU())
    >>> x = torch.randn(5, 3)
    >>> torch.testing.assert_close(after(x), before(x))
    >>> after[0][2]
    Linear(in_features=4, out_features=4, bias=True)
    """
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        raise TypeError(
            f"net2deeper supports nn.Linear and nn.Conv2d layers, got {type(layer).__name__}"
        )
    act = _make_activation(activation)
    if not approximate and not _is_idempotent(act):
        raise ValueError(
            f"net2deeper keeps the output unchanged only for an activation with "
            f"φ(φ(v)) = φ(v), such as ReLU; {act} is not. Pass approximate=True to insert "
            f"the identity layer anyway (the output will change: by about 4 % after SiLU and "
            f"about 20 % after Tanh on lesson 07's MLP), or use "
            f"net2deeper_residual, which is exact for any activation."
        )
    if isinstance(layer, nn.Conv2d):
        sizes = _kernel_hw(kernel_size or layer.kernel_size)
        if any(k % 2 == 0 for k in sizes) and not approximate:
            raise ValueError(
                f"net2deeper: the new Conv2d would get kernel size {sizes} (from {layer}); an "
                f"even kernel has no centre pixel, so a Dirac kernel shifts the image. Pass "
                f"kernel_size=3 (or another odd size), or approximate=True."
            )
    return nn.Sequential(layer, act, _identity_like(layer, kernel_size))


class Residual(nn.Module):
    """``x + branch(x)``: a block that adds what ``branch`` computes to its input."""

    def __init__(self, branch: nn.Module) -> None:
        super().__init__()
        self.branch = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def net2deeper_residual(
    layer: nn.Module, activation: ActivationLike = nn.ReLU, *, batchnorm: bool = False,
    kernel_size: int | tuple[int, int] | None = None,
) -> Residual:
    """A new block ``x + last(φ([BN](first(x))))`` whose ``last`` layer starts at zero.

    Insert it anywhere the tensor has ``layer``'s output size (after the activation of
    ``layer``'s block, or after a whole Conv→BN→ReLU block): it adds exactly zero at first,
    so the output is unchanged for ANY activation φ (Tanh, SiLU, GELU...) and with
    BatchNorm (``batchnorm=True`` puts one after ``first``, in train or eval mode). Only
    ``last`` gets a gradient at the first step; after that the branch learns like any other
    (a residual branch that starts at zero, like Goyal et al.'s (2017) zero-initialised last
    BatchNorm γ in each residual block; here the last layer's weights start at zero).
    ``first`` and ``last`` are Linear(o, o) for a Linear layer, Conv2d(o, o, k) with
    padding ``k // 2`` for a Conv2d (``k`` = ``kernel_size`` or ``layer``'s, odd).

    >>> torch.manual_seed(0) and None
    >>> layer = nn.Linear(3, 4)
    >>> block = nn.Sequential(layer, nn.Tanh())
    >>> deeper = nn.Sequential(block, net2deeper_residual(layer, nn.Tanh, batchnorm=True))
    >>> x = torch.randn(5, 3)
    >>> torch.testing.assert_close(deeper(x), block(x))
    """
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        raise TypeError(
            f"net2deeper_residual supports nn.Linear and nn.Conv2d layers, got {type(layer).__name__}"
        )
    if isinstance(layer, nn.Conv2d) and any(k % 2 == 0 for k in _kernel_hw(kernel_size or layer.kernel_size)):
        raise ValueError(
            f"net2deeper_residual: an even kernel {_kernel_hw(kernel_size or layer.kernel_size)} has "
            f"no centre pixel and cannot keep the image size; pass kernel_size=3"
        )
    first, last = _square_layer(layer, kernel_size), _square_layer(layer, kernel_size)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    width = _width(layer)
    norm: list[nn.Module] = []
    if batchnorm:
        bn = nn.BatchNorm1d if isinstance(layer, nn.Linear) else nn.BatchNorm2d
        norm = [bn(width, **factory)]
    return Residual(nn.Sequential(first, *norm, _make_activation(activation), last))


def _width(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return layer.out_features
    if isinstance(layer, nn.Conv2d):
        return layer.out_channels
    raise TypeError(f"net2wider supports nn.Linear and nn.Conv2d, got {type(layer).__name__}")


def _in_width(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return layer.in_features
    if isinstance(layer, nn.Conv2d):
        return layer.in_channels
    raise TypeError(
        f"net2wider supports nn.Linear and nn.Conv2d as next_layer, got {type(layer).__name__}"
    )


def _check_pair(layer: nn.Module, next_layer: nn.Module, new_width: int) -> int:
    """Validate a net2wider call; return how many inputs of next_layer each unit feeds."""
    width, next_in = _width(layer), _in_width(next_layer)
    for module in (layer, next_layer):
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            raise ValueError(f"net2wider does not support grouped convolutions: {module}")
    if isinstance(layer, nn.Linear) and isinstance(next_layer, nn.Conv2d):
        raise TypeError("net2wider: a Linear layer followed by a Conv2d is not supported")
    per_unit = 1
    if isinstance(layer, nn.Conv2d) and isinstance(next_layer, nn.Linear):
        # after a flatten, channel c owns the block of H·W inputs [c·H·W, (c+1)·H·W)
        per_unit, rest = divmod(next_in, width)
        if rest or per_unit == 0:
            raise ValueError(
                f"net2wider: next_layer has in_features={next_in}, which is not a multiple of "
                f"layer's out_channels={width}; expected channels·H·W after a flatten"
            )
    elif next_in != width:
        raise ValueError(
            f"net2wider: layer {layer} has {width} outputs but next_layer {next_layer} expects "
            f"{next_in} inputs; pass two layers that follow each other"
        )
    if not isinstance(new_width, int) or new_width < width:
        raise ValueError(
            f"net2wider can only add units: new_width={new_width!r} is smaller than the "
            f"current width {width} of {layer}"
        )
    return per_unit


class Widened(tuple):
    """What :func:`net2wider` returns: ``(new_layer, new_next[, new_batchnorm])``, unpackable.

    ``mapping[j]`` is the old unit that new unit ``j`` copies (the first ``width`` entries are
    ``0 .. width-1``); ``counts[i]`` is how many new units copy old unit ``i``.
    """

    mapping: torch.Tensor
    counts: torch.Tensor

    def __new__(cls, modules: Iterable[nn.Module], mapping: torch.Tensor,
                counts: torch.Tensor) -> Widened:
        result = super().__new__(cls, modules)
        result.mapping, result.counts = mapping, counts
        return result


def _replace_param(module: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(module, name)
    setattr(module, name, nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad))


def net2wider(
    layer: nn.Module, next_layer: nn.Module, new_width: int, *,
    batchnorm: nn.modules.batchnorm._BatchNorm | None = None, noise_std: float = 0.0,
    generator: torch.Generator | None = None, optimizer: torch.optim.Optimizer | None = None,
) -> Widened:
    """Widen ``layer`` to ``new_width`` units; return ``(new_layer, new_next_layer)``.

    Each new unit is a copy of an existing unit chosen at random (with ``generator``); the
    next layer's weights reading a unit that now has ``n`` copies are divided by ``n``, so
    the network's output is unchanged (exactly, when ``noise_std=0``). Pairs supported:
    Linear→Linear, Conv2d→Conv2d and Conv2d→Linear after a flatten (each channel feeds H·W
    consecutive inputs; H·W is inferred from ``next_layer.in_features``). Pass the
    BatchNorm between the two as ``batchnorm`` to get ``(new_layer, new_next, new_bn)``: its
    γ, β and running statistics are copied through the same mapping. The activation between
    them must act unit by unit (ReLU, tanh, ...). The inputs are left untouched.
    ``noise_std > 0`` adds N(0, noise_std²) to the copies' incoming weights to break their
    symmetry; the output then changes slightly.

    The result is a :class:`Widened` tuple: it unpacks as before and also carries
    ``.mapping`` (new unit → old unit it copies) and ``.counts``. With ``optimizer=``, the
    old parameters are replaced by the new ones in the optimizer (each in its own group) and
    their state is carried through the same mapping (Adam's moments: see :func:`_state_pairs`).

    >>> torch.manual_seed(0) and None
    >>> a, b = nn.Linear(3, 4), nn.Linear(4, 2)
    >>> wide_a, wide_b = net2wider(a, b, 6)
    >>> wide_b
    Linear(in_features=6, out_features=2, bias=True)
    >>> x = torch.randn(5, 3)
    >>> torch.testing.assert_close(wide_b(torch.relu(wide_a(x))), b(torch.relu(a(x))))
    >>> net2wider(a, b, 6, generator=torch.Generator().manual_seed(0)).mapping
    tensor([0, 1, 2, 3, 0, 3])
    """
    per_unit = _check_pair(layer, next_layer, new_width)
    width = _width(layer)
    if batchnorm is not None and batchnorm.num_features != width:
        raise ValueError(
            f"net2wider: batchnorm {batchnorm} has {batchnorm.num_features} features but "
            f"layer {layer} has {width} outputs"
        )
    extra = torch.randint(width, (new_width - width,), generator=generator)
    mapping = torch.cat([torch.arange(width), extra]).to(layer.weight.device)  # j copies mapping[j]
    counts = torch.bincount(mapping, minlength=width).to(layer.weight.dtype)
    new_layer = _widen_out(layer, mapping, noise_std, generator)
    new_next, columns = _widen_in(next_layer, mapping, counts, per_unit)
    modules = [new_layer, new_next]
    if batchnorm is not None:
        modules.append(_widen_batchnorm(batchnorm, mapping))
    result = Widened(modules, mapping, counts)
    if optimizer is not None:
        carry_state(optimizer, _state_pairs(layer, next_layer, batchnorm, result, columns))
    return result


def _widen_out(layer: nn.Module, mapping: torch.Tensor, noise_std: float,
               generator: torch.Generator | None) -> nn.Module:
    """Net2Net's first equation: new unit ``j`` gets the incoming weights of unit ``mapping[j]``."""
    width, device = _width(layer), layer.weight.device
    new_layer = copy.deepcopy(layer)
    weight = layer.weight.detach()[mapping].clone()
    if noise_std > 0:
        noise = torch.randn(weight[width:].shape, generator=generator) * noise_std
        weight[width:] += noise.to(device=device, dtype=weight.dtype)
    _replace_param(new_layer, "weight", weight)
    if layer.bias is not None:
        _replace_param(new_layer, "bias", layer.bias.detach()[mapping])
    if isinstance(layer, nn.Linear):
        new_layer.out_features = len(mapping)
    else:
        new_layer.out_channels = len(mapping)
    return new_layer


def _widen_in(next_layer: nn.Module, mapping: torch.Tensor, counts: torch.Tensor,
              per_unit: int) -> tuple[nn.Module, torch.Tensor]:
    """Net2Net's second equation: weights reading a unit that now has n copies are divided by n,
    so the copies add up to what the unit gave. Also returns the columns of ``next_layer``'s
    weight that the new layer reads, in order."""
    new_next = copy.deepcopy(next_layer)
    columns = mapping
    scale = 1.0 / counts[mapping]
    if per_unit > 1:  # Conv2d→Linear: expand each channel into its block of H·W columns
        offsets = torch.arange(per_unit, device=mapping.device)
        columns = (mapping[:, None] * per_unit + offsets).reshape(-1)
        scale = scale.repeat_interleave(per_unit)
    next_weight = next_layer.weight.detach()[:, columns]
    shape = (1, -1) + (1,) * (next_weight.dim() - 2)
    _replace_param(new_next, "weight", next_weight * scale.reshape(shape))
    if isinstance(next_layer, nn.Linear):
        new_next.in_features = len(mapping) * per_unit
    else:
        new_next.in_channels = len(mapping)
    return new_next, columns


def _state_pairs(
    layer: nn.Module, next_layer: nn.Module, batchnorm: nn.Module | None, widened: Widened,
    columns: torch.Tensor,
) -> list[tuple[torch.Tensor, torch.Tensor, Remap]]:
    """(old parameter, new parameter, how its optimizer state maps) for every widened tensor.

    Adam's moments of a copied unit start from its source's, rescaled like the gradients: a
    unit's incoming weights get 1/n of the gradient once it has n copies, so ``exp_avg`` is
    divided by n and ``exp_avg_sq`` by n². The next layer's weight columns are copied as
    they are, and its bias reads no unit, so its state is kept.
    """
    scale = 1.0 / widened.counts[widened.mapping]  # gradient factor of each unit's own params
    pairs: list[tuple[torch.Tensor, torch.Tensor, Remap]] = []
    unit_owners = [(layer, widened[0])] + ([(batchnorm, widened[2])] if batchnorm is not None else [])

    def rows(t: torch.Tensor, power: int) -> torch.Tensor:
        factor = scale.to(t.dtype).reshape((-1,) + (1,) * (t.dim() - 1)) ** power
        return t[widened.mapping] * factor

    for old_module, new_module in unit_owners:
        for name, old in old_module.named_parameters():
            pairs.append((old, getattr(new_module, name), rows))
    for name, old in next_layer.named_parameters():
        if name == "weight":
            pairs.append((old, widened[1].weight, lambda t, power: t[:, columns]))
        else:  # the next layer's bias reads no unit: its gradient does not change
            pairs.append((old, getattr(widened[1], name), lambda t, power: t.clone()))
    return pairs


def _widen_batchnorm(bn: nn.modules.batchnorm._BatchNorm, mapping: torch.Tensor) -> nn.Module:
    new_bn = copy.deepcopy(bn)
    new_bn.num_features = len(mapping)
    for name in ("weight", "bias"):
        if getattr(bn, name) is not None:
            _replace_param(new_bn, name, getattr(bn, name).detach()[mapping])
    for name in ("running_mean", "running_var"):
        if getattr(bn, name) is not None:
            setattr(new_bn, name, getattr(bn, name)[mapping].clone())
    return new_bn


class GrowingMLP(nn.Module):
    """A ReLU MLP ``in → hidden[0] → ... → hidden[-1] → out`` that can grow in place.

    ``deepen(position)`` inserts an identity layer after hidden layer ``position``;
    ``widen(index, new_width)`` widens hidden layer ``index`` (Net2WiderNet). Both keep the
    output unchanged and return a :class:`Growth` (the parameters removed and added); pass
    ``optimizer=`` to have it updated for you.

    >>> torch.manual_seed(0) and None
    >>> model = GrowingMLP(4, [8], 3)
    >>> x = torch.randn(2, 4); before = model(x)
    >>> growth = model.deepen(0); growth = model.widen(1, 12)
    >>> model.widths
    [8, 12]
    >>> torch.testing.assert_close(model(x), before)
    """

    def __init__(self, in_features: int, hidden: list[int], out_features: int) -> None:
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        if not all(isinstance(n, int) and n > 0 for n in sizes):
            raise ValueError(f"GrowingMLP: sizes must be positive ints, got {sizes}")
        self.layers = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    @property
    def widths(self) -> list[int]:
        """The widths of the hidden layers."""
        return [layer.out_features for layer in self.layers[:-1]]

    def _hidden_index(self, index: int, what: str) -> int:
        n = len(self.layers) - 1
        if not -n <= index < n:
            raise IndexError(
                f"{what}: hidden layer {index} does not exist; the hidden widths are {self.widths}"
            )
        return index % n

    def deepen(self, position: int, *, optimizer: torch.optim.Optimizer | None = None) -> Growth:
        """Insert an identity ``Linear(w, w)`` (+ ReLU) after hidden layer ``position``."""
        position = self._hidden_index(position, "deepen")
        new_layer = net2deeper(self.layers[position], self.activation)[-1]
        self.layers.insert(position + 1, new_layer)
        return self._report(Growth([], list(new_layer.parameters())), optimizer)

    def widen(
        self, index: int, new_width: int, *, noise_std: float = 0.0,
        generator: torch.Generator | None = None, optimizer: torch.optim.Optimizer | None = None,
        carry_state: bool = False,
    ) -> Growth:
        """Widen hidden layer ``index`` to ``new_width`` units (and the layer after it).

        With ``optimizer=`` the new parameters replace the old ones in it; with
        ``carry_state=True`` as well, their Adam moments are carried over as in
        :func:`net2wider` instead of starting from zero.
        """
        index = self._hidden_index(index, "widen")
        layer, after = self.layers[index], self.layers[index + 1]
        carry = optimizer if carry_state else None
        new_layer, new_after = net2wider(
            layer, after, new_width, noise_std=noise_std, generator=generator, optimizer=carry
        )
        self.layers[index], self.layers[index + 1] = new_layer, new_after
        growth = Growth([*layer.parameters(), *after.parameters()],
                        [*new_layer.parameters(), *new_after.parameters()])
        return self._report(growth, None if carry_state else optimizer)

    @staticmethod
    def _report(growth: Growth, optimizer: torch.optim.Optimizer | None) -> Growth:
        if optimizer is not None:
            replace_in_optimizer(optimizer, growth.old, growth.new)
        return growth

    def extra_repr(self) -> str:
        sizes = [self.layers[0].in_features, *self.widths, self.layers[-1].out_features]
        return "sizes=" + " → ".join(map(str, sizes))
