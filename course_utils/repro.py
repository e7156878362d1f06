"""Reproducibility: one seed for every random number generator, and the device to use."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["set_seed", "get_device"]


def set_seed(seed: int = 0, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch, and return a ``torch.Generator`` seeded the same way.

    Pass the returned generator to ``DataLoader(generator=...)`` or ``torch.randn(...,
    generator=...)`` when a piece of code should not depend on how many random numbers
    were drawn before it.

    >>> g = set_seed(0)
    >>> a = torch.rand(2); _ = set_seed(0); b = torch.rand(2)
    >>> bool(torch.equal(a, b))
    True
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeding the legacy global RNG is the point)
    torch.manual_seed(seed)
    if deterministic and torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def get_device(prefer: str | None = None) -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU.

    ``prefer="cpu"`` (or ``"cuda"``, ``"mps"``) forces a choice; asking for a device
    that is not available raises ``RuntimeError`` saying what is available.

    >>> get_device("cpu")
    device(type='cpu')
    """
    available = ["cpu"]
    if torch.cuda.is_available():
        available.insert(0, "cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        available.insert(-1, "mps")
    if prefer is None:
        return torch.device(available[0])
    if prefer not in available:
        raise RuntimeError(
            f"device {prefer!r} is not available on this machine; available: {', '.join(available)}"
        )
    return torch.device(prefer)
