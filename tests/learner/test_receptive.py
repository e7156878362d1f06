"""receptive_field: the textbook values, residual and branching models, untouched models."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course_utils.receptive import receptive_field
from course_utils.zoo import ResNet, gpt2, resnet, vgg16

META = torch.device("meta")


class _Features(nn.Module):
    """The body of a ResNet (its ``features`` method) as a module."""

    def __init__(self, model: ResNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


def brute_force_field(model: nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    """Height and width of the input patch that changes the centre output position, found
    from the gradient of that position with respect to every input pixel.

    Positive weights and inputs keep every ReLU open, and max-pools become average pools
    (same window), so no pixel of the field gets a zero gradient by accident.
    """
    model = copy.deepcopy(model).double()
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
    with torch.no_grad():
        for p in model.parameters():
            p.abs_().add_(0.01)
    x = torch.rand(shape, dtype=torch.float64).add_(0.1).requires_grad_()
    out = model(x)
    out[0, :, out.shape[-2] // 2, out.shape[-1] // 2].sum().backward()
    hit = x.grad[0].abs().sum(0) > 0
    rows, cols = hit.any(1).nonzero(), hit.any(0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_vgg16_after_pool5_and_conv5_3() -> None:
    with META:
        features = vgg16().features
    pool5 = receptive_field(features, (1, 3, 224, 224))
    assert (pool5.size, pool5.stride) == (212, 32)
    conv5_3 = receptive_field(features[:-2], (1, 3, 224, 224))  # drop its ReLU and pool5
    assert (conv5_3.size, conv5_3.stride) == (196, 16)
    assert [layer.size for layer in pool5.layers][:5] == [3, 3, 5, 5, 6]


def test_resnet50_body_and_head() -> None:
    with META:
        model = resnet(50)
    whole = receptive_field(model, (1, 3, 224, 224))
    by_name = {layer.name: layer for layer in whole.layers}
    assert (by_name["layer4"].size, by_name["layer4"].stride) == (427, 32)
    assert by_name["layer4"].spatial and not by_name["avgpool"].spatial
    # global average pooling: the union of all 7×7 positions' fields
    assert whole.size == 427 + 6 * 32 and not whole.spatial
    assert whole.covers_input


class TwoBranches(nn.Module):
    """A 5×5 branch and a dilated branch, concatenated, then a residual connection."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 3, 5, padding=2)
        self.b = nn.Conv2d(2, 3, 3, padding=2, dilation=2, stride=1)
        self.mix = nn.Conv2d(6, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(torch.cat([torch.relu(self.a(x)), self.b(x)], dim=1))


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Conv2d(2, 2, (3, 5))),
     (1, 1, 24, 30)),
    (TwoBranches, (1, 2, 20, 18)),
    (lambda: nn.Sequential(TwoBranches(), nn.AvgPool2d(2), nn.Conv2d(2, 2, 3, stride=2),
                           nn.Conv2d(2, 2, 3, padding=1, dilation=1)), (1, 2, 40, 44)),
    (lambda: _Features(ResNet("basic", [1, 1, 1, 1], width=4).eval()), (1, 3, 256, 256)),
])
def test_agrees_with_the_gradient_of_one_output(make, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = make()
    rf = receptive_field(model, shape)
    assert rf.sizes == brute_force_field(model, shape)


def test_resnet_features_method_equals_hand_computation() -> None:
    """ResNet-18's body: 7×7/2 stem, 3×3/2 pool, then two 3×3 convs per block."""
    with META:
        model = resnet(18)
    rf = receptive_field(_Features(model), (1, 3, 224, 224))
    size, jump = 7, 2
    size, jump = size + 2 * jump, jump * 2       # max pool
    for stage in range(4):
        for block in range(2):
            stride = 2 if stage and not block else 1
            size, jump = size + 2 * jump, jump * stride   # first 3×3 (carries the stride)
            size = size + 2 * jump                        # second 3×3
    assert (rf.size, rf.stride) == (size, jump) == (435, 32)


def test_one_dimensional_and_non_square() -> None:
    conv1d = nn.Sequential(nn.Conv1d(4, 4, 7, stride=3), nn.Conv1d(4, 4, 5))
    assert receptive_field(conv1d, (1, 4, 100)).size == 7 + 4 * 3
    rect = nn.Conv2d(1, 1, (3, 7), stride=(1, 2))
    rf = receptive_field(rect, (1, 1, 20, 30))
    assert rf.sizes == (3, 7) and rf.strides == (1, 2) and rf.size == 7


def test_model_is_untouched() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    receptive_field(model, (2, 3, 9, 9))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert model[0].weight.device.type == "cpu"
    assert all(not m._forward_hooks for m in model.modules())


def test_errors_teach() -> None:
    with pytest.raises(ValueError, match="batch, channel"):
        receptive_field(nn.Conv2d(1, 1, 3), (28, 28))
    with pytest.raises(NotImplementedError, match="transposed"):
        receptive_field(nn.ConvTranspose2d(1, 1, 3), (1, 1, 8, 8))
    with pytest.raises(NotImplementedError, match="upsample"):
        receptive_field(nn.Upsample(scale_factor=2), (1, 1, 8, 8))
    with META:
        tokens_model = gpt2(n_layer=1, n_head=1, d_model=4, vocab_size=5, context=8)
    with pytest.raises(NotImplementedError, match="embedding"):
        receptive_field(tokens_model, (1, 1, 8), dtype=torch.long)
    with pytest.raises(ValueError, match="unequal"):
        receptive_field(nn.AdaptiveAvgPool2d(3), (1, 1, 10, 10))


def test_share_of_positions_that_see_the_whole_input() -> None:
    """Lesson 05's GAP net: no position of its last map sees a whole 8×8 digit;
    every position of ResNet-50's last map sees the whole 224×224 image."""
    shallow = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU())
    rf = receptive_field(shallow, (1, 1, 8, 8))
    assert (rf.size, rf.positions) == (8, (4, 4))
    assert rf.whole_input_share() == 0.0
    assert rf.least_seen_share() == (5 / 8) ** 2  # a corner position sees 5×5 pixels
    with META:
        deep = receptive_field(_Features(resnet(50)), (1, 3, 224, 224))
    assert deep.whole_input_share() == (6 / 7) ** 2  # position 0's field ends at pixel 213
    assert deep.least_seen_share() == (214 / 224) ** 2
    assert receptive_field(nn.Conv2d(1, 1, 3), (1, 1, 3, 3)).whole_input_share() == 1.0
