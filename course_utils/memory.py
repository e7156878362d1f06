"""What training costs in memory: weights, gradients, optimizer state and activations.

Weights, gradients and optimizer state depend only on the model (:func:`param_bytes`,
:func:`training_bytes`). Activations depend on the batch: to compute gradients, autograd
keeps some tensors of the forward pass (a convolution's input, a ReLU's output, ...) until
the backward pass has used them. :func:`activation_bytes` measures
exactly those, on a meta-device replica of the model, so a ResNet-50 at batch 256 is sized
in a fraction of a second without allocating a byte, and the model is never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course_utils._meta import check_initialised, meta_replica, to_meta
from course_utils.style import PALETTE

__all__ = [
    "param_bytes", "training_bytes", "activation_bytes", "training_memory", "TrainingMemory",
    "plot_training_memory",
]

# extra tensors an optimizer keeps per parameter: momentum, Adam's two moments, ...
_OPTIMIZER_STATES = {"sgd": 0, "sgd_momentum": 1, "rmsprop": 1, "adagrad": 1, "adam": 2,
                     "adamw": 2}


def param_bytes(model: nn.Module, dtype: torch.dtype | None = None) -> int:
    """Bytes taken by the parameters, in their own dtypes or as if stored in ``dtype``.

    >>> param_bytes(nn.Linear(1000, 1000))  # 1,001,000 float32 values
    4004000
    >>> param_bytes(nn.Linear(1000, 1000), dtype=torch.bfloat16)
    2002000
    """
    check_initialised(model)
    if dtype is not None:
        size = torch.empty((), dtype=dtype).element_size()
        return sum(p.numel() for p in model.parameters()) * size
    return sum(p.numel() * p.element_size() for p in model.parameters())


def training_bytes(model: nn.Module, optimizer: str = "adam") -> int:
    """Bytes to train ``model``: weights + gradients + the optimizer's state per parameter.

    Adam keeps two moment buffers, so training with it takes about 4× the weights;
    plain SGD about 2×. Activations are not included (they depend on the batch size).

    >>> m = nn.Linear(1000, 1000)
    >>> training_bytes(m, "adam") // param_bytes(m), training_bytes(m, "sgd") // param_bytes(m)
    (4, 2)
    """
    key = optimizer.lower()
    if key not in _OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose from {sorted(_OPTIMIZER_STATES)}")
    check_initialised(model)
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return param_bytes(model) + trainable * (1 + _OPTIMIZER_STATES[key])


def _storage_key(t: torch.Tensor) -> int:
    """An identity for the memory block behind ``t``: views of one tensor share it."""
    return t.untyped_storage()._cdata


def activation_bytes(model: nn.Module, *inputs: Any) -> int:
    """Bytes autograd saves during one forward pass of ``model`` on ``inputs``, for backward.

    The pass runs on a meta replica (nothing is allocated, the model is untouched) in the
    model's own mode (``train()`` for training memory: batch norm then saves its batch
    statistics). Every tensor saved for backward is counted once per storage, so an
    in-place ReLU's output and the tensor it overwrote, or several views of one tensor,
    count once. The model's parameters and buffers are not counted (they are weights), but
    an input that a layer saves (the first convolution's) is. Only what autograd needs is
    kept: with every parameter frozen and an input that does not require a gradient,
    nothing is saved at all.

    Attention (``F.scaled_dot_product_attention``) is counted as its plain "math" version
    computes it, keeping the T×T attention weights of every head; fused kernels (flash
    attention on a GPU, PyTorch's CPU kernel) recompute them and keep less.

    >>> relu_net = nn.Sequential(nn.Linear(100, 50), nn.ReLU())
    >>> activation_bytes(relu_net, torch.zeros(8, 100))  # the 8×100 input (for the weight's
    ... # gradient) and the 8×50 ReLU output (for its mask), 4 bytes each
    4800
    """
    if not inputs:
        raise ValueError("activation_bytes needs example inputs with the batch dimension, "
                         "e.g. torch.zeros(32, 3, 224, 224)")
    check_initialised(model)
    replica = meta_replica(model)
    owned = {_storage_key(t) for t in (*replica.parameters(), *replica.buffers())}
    meta_inputs = tuple(to_meta(x) for x in inputs)
    saved: dict[int, int] = {}
    keep: list[torch.Tensor] = []  # keeps storages alive, so no key is reused mid-pass

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in owned:
            saved[key] = t.untyped_storage().nbytes()
            keep.append(t)
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        replica(*meta_inputs)
    return sum(saved.values())


@dataclass
class TrainingMemory:
    """Training memory of one step, in bytes, split by what holds it."""

    weights: int
    gradients: int
    optimizer_state: int
    activations: int
    optimizer: str = "adam"

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_state + self.activations

    def parts(self) -> dict[str, int]:
        """The four parts in the order of the stacked bar."""
        return {"weights": self.weights, "gradients": self.gradients,
                "optimizer state": self.optimizer_state, "activations": self.activations}

    def __str__(self) -> str:
        rows = [f"{name:<16}{value / 2**20:>12,.1f} MiB" for name, value in self.parts().items()]
        rows.append(f"{'total':<16}{self.total / 2**20:>12,.1f} MiB")
        return "\n".join(rows)

    def plot(self, ax: Any = None, label: str = "") -> Any:
        """Draw the four parts as one stacked bar (MiB); returns the matplotlib axes."""
        return plot_training_memory([self], [label or "one training step"], ax=ax)


def plot_training_memory(memories: Sequence[TrainingMemory], labels: Sequence[str],
                         ax: Any = None) -> Any:
    """One stacked bar per :class:`TrainingMemory` (e.g. one per batch size), in MiB."""
    import matplotlib.pyplot as plt

    if len(memories) != len(labels):
        raise ValueError(f"got {len(memories)} memories but {len(labels)} labels")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(memories) + 2), 4))
    positions = list(range(len(memories)))
    bottoms = [0.0] * len(memories)
    for colour, name in zip(PALETTE, memories[0].parts() if memories else {}):
        heights = [m.parts()[name] / 2**20 for m in memories]
        ax.bar(positions, heights, bottom=bottoms, color=colour, label=name, width=0.7)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ax.set_xticks(positions, list(labels))
    ax.set_ylabel("memory (MiB)")
    ax.set_title(f"training memory with {memories[0].optimizer}" if memories else "training memory")
    ax.legend()
    return ax


def training_memory(model: nn.Module, *inputs: Any, optimizer: str = "adam") -> TrainingMemory:
    """Memory of one training step of ``model`` on ``inputs`` with ``optimizer``.

    Weights, gradients (one per trainable parameter) and the optimizer's state come from
    :func:`training_bytes`; activations are measured with
    :func:`activation_bytes`. Not included: the framework's workspace, the allocator's
    fragmentation and temporary buffers of the backward pass.

    >>> m = training_memory(nn.Sequential(nn.Linear(100, 50), nn.ReLU()), torch.zeros(8, 100))
    >>> m.weights, m.gradients, m.optimizer_state, m.activations
    (20200, 20200, 40400, 4800)
    """
    weights = param_bytes(model)
    gradients = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    state = training_bytes(model, optimizer) - weights - gradients
    return TrainingMemory(weights, gradients, state, activation_bytes(model, *inputs),
                          optimizer.lower())
