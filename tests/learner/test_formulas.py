"""Every closed form agrees with .numel() of the real PyTorch layer, over many shapes."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from course_utils import (
    conv2d_output_size,
    conv2d_params,
    linear_params,
    lstm_params,
)
from course_utils.formulas import batchnorm_params, embedding_params, mlp_params


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("i,o,bias", list(itertools.product([1, 7, 64], [1, 5, 33], [True, False])))
def test_linear(i: int, o: int, bias: bool) -> None:
    assert linear_params(i, o, bias) == numel(nn.Linear(i, o, bias=bias))


def test_mlp_matches_course_figures() -> None:
    assert mlp_params([10, 18, 20, 5]) == 683
    assert mlp_params([8, 4, 2]) == 46
    with pytest.raises(ValueError, match="at least an input and an output"):
        mlp_params([3])


@pytest.mark.parametrize(
    "cin,cout,k,groups,bias",
    [(3, 8, 3, 1, True), (8, 16, (3, 5), 1, False), (32, 32, 3, 32, True), (12, 6, 1, 3, True),
     (256, 64, 1, 1, False), (4, 8, (1, 7), 2, True)],
)
def test_conv2d(cin, cout, k, groups, bias) -> None:
    assert conv2d_params(cin, cout, k, groups=groups, bias=bias) == numel(
        nn.Conv2d(cin, cout, k, groups=groups, bias=bias))


def test_conv2d_groups_must_divide() -> None:
    with pytest.raises(ValueError, match="not divisible by groups=4"):
        conv2d_params(6, 8, 3, groups=4)


@pytest.mark.parametrize(
    "i,h,layers,bi,bias",
    list(itertools.product([1, 13], [2, 20], [1, 3], [False, True], [True, False])),
)
def test_lstm(i, h, layers, bi, bias) -> None:
    real = nn.LSTM(i, h, num_layers=layers, bidirectional=bi, bias=bias)
    assert lstm_params(i, h, layers, bidirectional=bi, bias=bias) == numel(real)


def test_batchnorm_and_embedding() -> None:
    bn = nn.BatchNorm2d(16)
    assert batchnorm_params(16) == numel(bn)
    assert sum(b.numel() for b in bn.buffers()) == 2 * 16 + 1  # running stats are buffers
    assert embedding_params(100, 50) == numel(nn.Embedding(100, 50))


@pytest.mark.parametrize(
    "size,k,s,p,d", list(itertools.product([7, 28, (32, 17)], [1, 3, 5], [1, 2], [0, 1, 2], [1, 2])),
)
def test_conv2d_output_size(size, k, s, p, d) -> None:
    h, w = (size, size) if isinstance(size, int) else size
    if h + 2 * p < d * (k - 1) + 1 or w + 2 * p < d * (k - 1) + 1:
        with pytest.raises(ValueError, match="does not fit"):
            conv2d_output_size(size, k, s, p, d)
        return
    out = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, h, w)).shape[-2:]
    expected = out[0] if isinstance(size, int) else tuple(out)
    assert conv2d_output_size(size, k, s, p, d) == expected


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        linear_params(0, 3)
    with pytest.raises(ValueError, match="kernel_size must be an int or a pair"):
        conv2d_params(3, 3, (1, 2, 3))
