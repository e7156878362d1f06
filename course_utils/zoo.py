"""Published architectures, written compactly in the course's own code.

Four families that practitioners meet first: ResNet, MobileNetV2, VGG-16 and GPT-2. Each
builder reproduces the published parameter count exactly (the layer names follow
torchvision's and GPT-2's, so a reader can compare them with the papers), constructs on
any device, including under ``with torch.device("meta")`` where a 138-million-parameter
model is built in milliseconds without allocating its weights, and runs a real forward
pass on the CPU.

>>> import torch
>>> with torch.device("meta"):
...     model = resnet(50)
>>> sum(p.numel() for p in model.parameters())
25557032
>>> resnet(18, num_classes=10)(torch.zeros(2, 3, 64, 48)).shape
torch.Size([2, 10])

The models are built with random weights: no download, no pretrained checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["resnet", "mobilenet_v2", "vgg16", "gpt2", "ResNet", "MobileNetV2", "VGG", "GPT2",
           "BasicBlock", "Bottleneck", "InvertedResidual", "RESNET_LAYERS"]

# ------------------------------------------------------------------------------- ResNet


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out)]


class BasicBlock(nn.Module):
    """Two 3×3 convolutions and a shortcut (ResNet-18/34). ``expansion`` = 1."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1, self.bn1 = _conv_bn(c_in, width, 3, stride)
        self.conv2, self.bn2 = _conv_bn(width, c_out, 3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 squeeze, 3×3 (carrying the stride, "ResNet v1.5"), 1×1 expand ×4, and a shortcut."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1, self.bn1 = _conv_bn(c_in, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = _conv_bn(width, c_out, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    """A 1×1 projection when the shape changes, otherwise the identity (``None``)."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))


RESNET_LAYERS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """A ResNet: a 7×7 stem, four stages of residual blocks, global average pooling, a linear head.

    ``block`` is ``"basic"`` or ``"bottleneck"``, ``layers`` the number of blocks per stage
    and ``width`` the first stage's width (stages use width·1, ·2, ·4, ·8): changing
    ``layers`` and ``width`` gives the deeper/wider family that compound scaling explores.

    >>> ResNet("basic", [1, 1, 1, 1], num_classes=3, width=8)(torch.zeros(1, 3, 32, 40)).shape
    torch.Size([1, 3])
    """

    def __init__(self, block: str, layers: Sequence[int], num_classes: int = 1000,
                 width: int = 64) -> None:
        super().__init__()
        blocks = {"basic": BasicBlock, "bottleneck": Bottleneck}
        if block not in blocks:
            raise ValueError(f"block must be 'basic' or 'bottleneck', not {block!r}")
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers needs four stage lengths of at least 1, got {list(layers)}")
        kind = blocks[block]
        self.conv1, self.bn1 = _conv_bn(3, width, 7, stride=2)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in = width
        for stage, n_blocks in enumerate(layers):
            stage_width = width * 2**stage
            stage_blocks = []
            for i in range(n_blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                stage_blocks.append(kind(c_in, stage_width, stride))
                c_in = stage_width * kind.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*stage_blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (N × C × H/32 × W/32), before pooling."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def resnet(depth: int = 50, num_classes: int = 1000) -> ResNet:
    """ResNet-18, 34, 50, 101 or 152 (He et al. 2015; torchvision's "v1.5" layout).

    >>> sum(p.numel() for p in resnet(18).parameters())
    11689512
    """
    if depth not in RESNET_LAYERS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_LAYERS)}, not {depth!r}")
    block, layers = RESNET_LAYERS[depth]
    return ResNet(block, layers, num_classes)


# ---------------------------------------------------------------------------- MobileNetV2


def _divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, losing at most 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn_relu6(c_in: int, c_out: int, kernel: int, stride: int = 1,
                   groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1×1 expand (×t), 3×3 depthwise, 1×1 linear projection.

    ``depthwise`` and ``project`` are the depthwise-separable pair whose cost, next to a
    standard 3×3 convolution, is ``1/c_out + 1/9``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = c_in * expand_ratio
        self.use_residual = stride == 1 and c_in == c_out
        self.expand = _conv_bn_relu6(c_in, hidden, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False),
                                     nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


# expansion t, output channels c, repeats n, first stride s (Sandler et al. 2018, Table 2)
_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                 (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(nn.Module):
    """MobileNetV2 with width multiplier ``width_mult`` (α): every layer's channels × α."""

    def __init__(self, width_mult: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        c_in = _divisible(32 * width_mult)
        last = _divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [_conv_bn_relu6(3, c_in, 3, stride=2)]
        for t, c, n, s in _MOBILENET_V2:
            c_out = _divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
                c_in = c_out
        layers.append(_conv_bn_relu6(c_in, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(width_mult: float = 1.0, num_classes: int = 1000) -> MobileNetV2:
    """MobileNetV2 (Sandler et al. 2018).

    >>> sum(p.numel() for p in mobilenet_v2().parameters())
    3504872
    """
    return MobileNetV2(width_mult, num_classes)


# --------------------------------------------------------------------------------- VGG-16

_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M")


class VGG(nn.Module):
    """VGG: stacks of 3×3 convolutions and 2×2 max-pools, then three fully connected layers."""

    def __init__(self, config: Sequence[int | str] = _VGG16, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                c_in = int(item)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(c_in * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg16(num_classes: int = 1000) -> VGG:
    """VGG-16 (Simonyan & Zisserman 2014, configuration D), without batch norm.

    >>> with torch.device("meta"):
    ...     print(sum(p.numel() for p in vgg16().parameters()))
    138357544
    """
    return VGG(_VGG16, num_classes)


# ---------------------------------------------------------------------------------- GPT-2


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which a token sees only itself and earlier tokens."""

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} must be divisible by n_head={n_head}")
        self.n_head = n_head
        self.c_attn = nn.Linear(d_model, 3 * d_model)  # queries, keys and values at once
        self.c_proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(n, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    """A pre-norm transformer block: attention, then a 4× wide MLP, each with a shortcut."""

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_head)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """GPT-2: token and position embeddings, ``n_layer`` blocks, a final norm, the LM head."""

    def __init__(self, n_layer: int = 12, n_head: int = 12, d_model: int = 768,
                 vocab_size: int = 50257, context: int = 1024, tie_weights: bool = True) -> None:
        super().__init__()
        self.context = context
        self.wte = nn.Embedding(vocab_size, d_model)
        self.wpe = nn.Embedding(context, d_model)
        self.h = nn.ModuleList(Block(d_model, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_weights:  # one matrix both embeds tokens and scores them
            self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (N × T, T ≤ context) → logits (N × T × vocab_size)."""
        t = idx.shape[-1]
        if t > self.context:
            raise ValueError(f"sequence of {t} tokens is longer than the context ({self.context})")
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def gpt2(n_layer: int = 12, n_head: int = 12, d_model: int = 768, vocab_size: int = 50257,
         context: int = 1024, tie_weights: bool = True) -> GPT2:
    """GPT-2 (Radford et al. 2019); the defaults are GPT-2 small. Returns logits.

    >>> with torch.device("meta"):
    ...     tied, untied = gpt2(), gpt2(tie_weights=False)
    >>> sum(p.numel() for p in tied.parameters()), sum(p.numel() for p in untied.parameters())
    (124439808, 163037184)
    >>> tiny = gpt2(n_layer=1, n_head=2, d_model=8, vocab_size=11, context=5)
    >>> tiny(torch.zeros(3, 4, dtype=torch.long)).shape
    torch.Size([3, 4, 11])
    """
    return GPT2(n_layer, n_head, d_model, vocab_size, context, tie_weights)
