"""Closed-form parameter counts and output sizes, to check against ``.numel()``.

Every function here is plain arithmetic: no model is built. The lessons compare each
formula with ``sum(p.numel() for p in layer.parameters())`` of the real PyTorch layer.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "linear_params", "conv2d_params", "lstm_params", "conv2d_output_size",
    "batchnorm_params", "embedding_params", "mlp_params",
]

IntOrPair = int | tuple[int, int]


def _pair(value: IntOrPair, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


def _positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of ``nn.Linear(in_features, out_features)``: one weight per input and
    one bias for each output neuron, ``out·(in + 1)``.

    >>> linear_params(10, 18), linear_params(8, 4), linear_params(8, 4, bias=False)
    (198, 36, 32)
    """
    _positive(in_features=in_features, out_features=out_features)
    return out_features * (in_features + int(bias))


def mlp_params(widths: Sequence[int], bias: bool = True) -> int:
    """Parameters of a stack of Linear layers with the given widths (activations hold none).

    >>> mlp_params([10, 18, 20, 5]), mlp_params([8, 4, 2])
    (683, 46)
    """
    if len(widths) < 2:
        raise ValueError(f"widths needs at least an input and an output size, got {list(widths)}")
    return sum(linear_params(a, b, bias) for a, b in zip(widths[:-1], widths[1:], strict=False))


def conv2d_params(
    in_channels: int, out_channels: int, kernel_size: IntOrPair, *, groups: int = 1,
    bias: bool = True,
) -> int:
    """Parameters of ``nn.Conv2d``: ``c_out·(c_in/groups)·kh·kw + c_out`` (bias).

    >>> conv2d_params(3, 8, 3), conv2d_params(256, 64, 1, bias=False)
    (224, 16384)
    >>> conv2d_params(32, 32, 3, groups=32)  # depthwise: one 3x3 filter per channel
    320
    """
    _positive(in_channels=in_channels, out_channels=out_channels, groups=groups)
    kh, kw = _pair(kernel_size, "kernel_size")
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels % groups:
            raise ValueError(f"{name}={channels} is not divisible by groups={groups}")
    return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)


def batchnorm_params(num_features: int, affine: bool = True) -> int:
    """Learnable parameters of ``nn.BatchNorm1d/2d``: a scale γ and a shift β per feature.

    The running mean and variance (and ``num_batches_tracked``) are *buffers*, not parameters.

    >>> batchnorm_params(16)
    32
    """
    _positive(num_features=num_features)
    return 2 * num_features if affine else 0


def embedding_params(num_embeddings: int, embedding_dim: int) -> int:
    """Parameters of ``nn.Embedding``: one vector of ``embedding_dim`` per token.

    >>> embedding_params(100, 50)
    5000
    """
    _positive(num_embeddings=num_embeddings, embedding_dim=embedding_dim)
    return num_embeddings * embedding_dim


def lstm_params(
    input_size: int, hidden_size: int, num_layers: int = 1, *, bidirectional: bool = False,
    bias: bool = True,
) -> int:
    """Parameters of ``nn.LSTM``: per layer and direction ``4·(H·I + H·H + 2H)``.

    The 4 is the four gates; PyTorch keeps *two* bias vectors per gate (``b_ih`` and
    ``b_hh``), so its counts exceed those of frameworks with one bias by ``4H`` per layer
    and direction. Layers after the first take ``H`` (or ``2H`` if bidirectional) inputs.

    >>> lstm_params(50, 50, num_layers=2)
    40800
    >>> lstm_params(10, 20, bidirectional=True)
    5120
    """
    _positive(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
    directions = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else hidden_size * directions
        per_direction = 4 * (hidden_size * layer_input + hidden_size * hidden_size)
        per_direction += 8 * hidden_size if bias else 0
        total += directions * per_direction
    return total


def conv2d_output_size(
    size: IntOrPair, kernel_size: IntOrPair, stride: IntOrPair = 1, padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> int | tuple[int, int]:
    """Spatial output size of a convolution or pooling layer:
    ``floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1``.

    Returns an int for an int ``size`` and a (height, width) pair otherwise.

    >>> conv2d_output_size(28, 3, padding=1), conv2d_output_size(28, 2, stride=2)
    (28, 14)
    >>> conv2d_output_size((32, 24), 5)
    (28, 20)
    """
    pairs = [_pair(v, n) for v, n in ((size, "size"), (kernel_size, "kernel_size"),
                                       (stride, "stride"), (padding, "padding"),
                                       (dilation, "dilation"))]
    out = tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1 for s, k, st, p, d in zip(*pairs, strict=True)
    )
    if min(out) < 1:
        raise ValueError(
            f"a {kernel_size} kernel (dilation {dilation}, padding {padding}) does not fit an "
            f"input of size {size}: the output would be {out}"
        )
    return out[0] if isinstance(size, int) else out  # type: ignore[return-value]
