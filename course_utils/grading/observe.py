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

import json
import math
import types
from collections.abc import Callable
from typing import Any

# Probes call these as observe.describe, observe.rebuild and observe.state_size.
from course_utils.grading.modelspec import describe, rebuild, state_size

__all__ = ["MAX_NUMBERS", "encode", "plain", "run_probe", "randn", "seeded", "behave",
           "describe", "rebuild", "draw_weights", "state_size"]

MAX_NUMBERS = 2_000_000  # a result larger than this is refused, not encoded
_ITERATORS = (types.GeneratorType, map, filter, range, type({}.keys()), type({}.values()),
              type({}.items()))


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

    if isinstance(value, _ITERATORS):  # a generator or a view where a list was asked for
        return plain(list(value), budget, _depth)
    if isinstance(value, np.generic):
        return plain(value.item(), budget, _depth)
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not (
            value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        return int(value.item())  # a whole number in a tensor: the number (as operator.index)
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


