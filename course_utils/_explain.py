"""Errors that teach: turn a failed forward pass into a message naming the layer and the fix.

``inspection`` runs its forward passes under hooks that record, for every module, the shapes
it received and produced (``records``) and which modules are running (``running``). When
PyTorch raises, :func:`explain_failure` reads those records and returns a
:class:`ForwardPassError`, or a :class:`ShapeMismatchError` when a layer was built for
another input size. Learners import both from :mod:`course_utils.inspection`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["ForwardPassError", "ShapeMismatchError", "explain_failure"]

Records = dict[str, dict[str, Any]]


class ForwardPassError(RuntimeError):
    """The forward pass failed inside a named module; the message says which and why."""

    def __init__(self, message: str, module_name: str, module_type: str) -> None:
        super().__init__(message)
        self.module_name = module_name
        self.module_type = module_type


class ShapeMismatchError(ForwardPassError):
    """A layer received an input whose size does not match what it was built for."""


def _dims(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def explain_failure(
    error: Exception, model: nn.Module, records: Records, running: list[str], inputs: tuple[Any, ...],
) -> ForwardPassError:
    """The error to raise instead of ``error``: which layer failed, on what, and what to do."""
    name = running[-1] if running else ""
    rec = records.get(name, {})
    module = rec.get("module", model)
    label = name or "(the model itself)"
    kind = type(module).__name__
    received = rec.get("input", "?")
    model_input = ", ".join(_dims(t.shape) for t in inputs if isinstance(t, torch.Tensor))
    args = rec.get("input_tensors") or ()
    first = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if isinstance(module, nn.Linear) and first is not None and first.shape[-1] != module.in_features:
        lines = _linear_mismatch(module, label, first.shape[-1], records, name, model_input)
        return ShapeMismatchError("\n".join(lines), module_name=name, module_type=kind)
    if isinstance(module, nn.modules.conv._ConvNd) and first is not None and (
            first.dim() >= 2 and first.shape[-(module.weight.dim() - 1)] != module.in_channels):
        channels = first.shape[-(module.weight.dim() - 1)]
        lines = [f"layer '{label}' ({kind}, in_channels={module.in_channels}) received an input "
                 f"with {channels} channels (shape {received}).",
                 f"  The model's input was {model_input}; check the channel dimension "
                 "(N×C×H×W) or the previous layer's out_channels."]
        return ShapeMismatchError("\n".join(lines), module_name=name, module_type=kind)
    # for shape mismatches the explanations above are clearer than PyTorch's own message
    lines = [f"layer '{label}' ({kind}) failed on an input of shape {received}.",
             f"  PyTorch said: {type(error).__name__}: {str(error).splitlines()[0]}"]
    return ForwardPassError("\n".join(lines), module_name=name, module_type=kind)


def _linear_mismatch(
    module: nn.Linear, label: str, got: int, records: Records, name: str, model_input: str,
) -> list[str]:
    """Why a Linear layer got ``got`` features: the layer before it, or the image size."""
    lines = [f"layer '{label}' (Linear, in_features={module.in_features}) received {got} features."]
    previous = _previous_leaf(records, name)
    before = _flattened_from(records, name)
    if previous is not None and isinstance(previous[1], nn.Linear):
        prev_name, prev = previous
        return lines + [
            f"  The layer before it, '{prev_name}' (Linear, out_features={prev.out_features}), "
            f"produces {prev.out_features} features: the widths do not chain.",
            f"  Make this layer nn.Linear({prev.out_features}, {module.out_features}), or give "
            f"'{prev_name}' out_features={module.in_features}.",
        ]
    if before:
        return lines + [
            f"  The model's input was {model_input}; after the earlier layers the feature map "
            f"is {before}.",
            "  The layer's in_features was computed for another input size. Use inputs of the "
            "size the model was built for, compute in_features with a dummy forward pass, or "
            f"replace the layer with nn.LazyLinear({module.out_features}).",
        ]
    return lines + [f"  The model's input was {model_input}: its last dimension must be "
                    f"{module.in_features}."]


def _previous_leaf(records: Records, failing: str) -> tuple[str, nn.Module] | None:
    """The last leaf module with parameters that finished before ``failing`` started
    (activations, dropout and other parameter-free layers are skipped)."""
    previous = None
    for name, rec in records.items():
        if name == failing:
            break
        module = rec["module"]
        if "output" in rec and not list(module.children()) and list(module.parameters()):
            previous = (name, rec["module"])
    return previous


def _flattened_from(records: Records, failing: str) -> str:
    """The last multi-dimensional output produced before ``failing`` ran, as 'C×H×W = n'."""
    best = ""
    for name, rec in records.items():
        if name == failing or "output" not in rec or not name:
            continue
        shape = rec["output"]
        if shape.startswith("[") and shape.count(",") >= 3:  # N×C×H×W or more
            dims = [int(d) for d in shape.strip("[]").split(",")][1:]
            total = 1
            for d in dims:
                total *= d
            best = f"{_dims(dims)} = {total}"
    return best
