from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_utils import get_device, set_seed


def test_set_seed_makes_every_generator_repeat() -> None:
    def draw() -> tuple:
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()  # noqa: NPY002

    set_seed(123)
    first = draw()
    set_seed(123)
    assert draw() == first
    set_seed(124)
    assert draw() != first


def test_set_seed_returns_a_seeded_generator() -> None:
    a = torch.rand(4, generator=set_seed(7))
    b = torch.rand(4, generator=set_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_set_seed_rejects_bad_seeds(bad) -> None:
    with pytest.raises(ValueError, match="non-negative int"):
        set_seed(bad)


def test_get_device_prefers_accelerators(monkeypatch) -> None:
    assert get_device() == torch.device("cuda" if torch.cuda.is_available() else
                                        "mps" if torch.backends.mps.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("mps")


def test_get_device_explains_a_missing_device(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="'cuda' is not available.*available: "):
        get_device("cuda")
    assert get_device("cpu") == torch.device("cpu")
