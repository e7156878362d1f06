"""Rules the learner modules share: meta-device replicas, and giving a model its modes back.

- :func:`meta_replica` copies a model onto the ``meta`` device (shapes only, no data), so
  ``inspection``, ``memory`` and ``receptive`` can run a forward pass on a model of any size
  without touching it;
- :func:`check_initialised` refuses a model with an uninitialised lazy layer, whose counts
  would be wrong, with a :class:`LazyModuleError` that says how to fix it;
- :func:`preserved_mode` gives every module its own train/eval mode back after a block that
  changes it (a plot, an evaluation, a timing), so a submodule the user froze in eval mode
  stays frozen.

Private to the package: learners import these through the modules that use them
(``LazyModuleError`` from :mod:`course_utils.inspection`).

>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
>>> _ = model[1].eval()  # frozen statistics in a model that trains
>>> with preserved_mode(model):
...     _ = model.eval()
>>> model.training, model[0].training, model[1].training
(True, True, False)
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

__all__ = ["META", "LazyModuleError", "check_initialised", "meta_replica", "to_meta", "preserved_mode"]

META = torch.device("meta")


class LazyModuleError(RuntimeError):
    """A lazy layer (``nn.LazyLinear``, ``nn.LazyConv2d``...) has no shape yet."""


def check_initialised(model: nn.Module) -> None:
    """Raise :class:`LazyModuleError`, naming the layer, if ``model`` has a lazy parameter.

    >>> check_initialised(nn.Linear(2, 3))
    >>> try:
    ...     check_initialised(nn.Sequential(nn.LazyLinear(3)))
    ... except LazyModuleError as error:
    ...     print(str(error).split(":")[0])
    layer '0' (LazyLinear) is lazy and not initialised yet
    """
    lazy = [
        f"'{name or type(model).__name__}' ({type(module).__name__})"
        for name, module in model.named_modules()
        if any(isinstance(p, UninitializedParameter) for p in module.parameters(recurse=False))
    ]
    if lazy:
        raise LazyModuleError(
            f"layer {', '.join(lazy)} is lazy and not initialised yet: its weight shapes are "
            "only known after data flows through it.\n  Fix: run one dry forward pass first, "
            "e.g. model(torch.zeros(1, *input_shape)), then count again."
        )


def meta_replica(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose tensors live on the meta device: no data is copied, tied
    weights stay tied, and the original is untouched.

    >>> replica = meta_replica(nn.Linear(1000, 1000))
    >>> replica.weight.device.type, replica.weight.shape
    ('meta', torch.Size([1000, 1000]))
    """
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device=META), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device=META)
    return copy.deepcopy(model, memo)


def to_meta(value: Any) -> Any:
    """Tensors (also inside tuples, lists and dicts) moved to the meta device; the rest as is."""
    if isinstance(value, torch.Tensor):
        return value.to(META)
    if isinstance(value, (tuple, list)):
        return type(value)(to_meta(v) for v in value)
    if isinstance(value, dict):
        return {k: to_meta(v) for k, v in value.items()}
    return value


@contextmanager
def preserved_mode(model: nn.Module) -> Iterator[nn.Module]:
    """On exit, give every module of ``model`` the train/eval mode it had on entry.

    ``model.train(was_training)`` would not: it sets *every* submodule to the model's mode,
    so a BatchNorm the user had put in eval mode would come back training. Modules added
    inside the block take the model's own mode.
    """
    # modules() lists the model first and every parent before its children, so restoring in
    # this order sets new modules to their parent's mode and every recorded module to its own.
    modes = {module: module.training for module in model.modules()}
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.train(training)
