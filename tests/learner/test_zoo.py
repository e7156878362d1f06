"""The zoo reproduces the published parameter counts and MACs, on meta and on the CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.inspection import count_params, flops
from course_utils.zoo import gpt2, mobilenet_v2, resnet, vgg16

META = torch.device("meta")

# name -> (builder, published parameters, published GMACs at 224×224)
PUBLISHED = {
    "resnet18": (lambda: resnet(18), 11_689_512, 1.81),
    "resnet50": (lambda: resnet(50), 25_557_032, 4.09),
    "mobilenet_v2": (mobilenet_v2, 3_504_872, 0.30),
    "vgg16": (vgg16, 138_357_544, 15.47),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_params_and_macs_on_meta(name: str) -> None:
    build, params, gmacs = PUBLISHED[name]
    with META:
        model = build()
    assert all(p.device.type == "meta" for p in model.parameters())
    assert count_params(model) == params
    macs = flops(model, torch.zeros(1, 3, 224, 224, device=META)) / 2
    assert macs / 1e9 == pytest.approx(gmacs, rel=0.02)


def test_gpt2_small_tied_and_untied() -> None:
    with META:
        tied, untied = gpt2(), gpt2(tie_weights=False)
    assert count_params(tied) == 124_439_808
    assert count_params(untied) == 163_037_184
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.lm_head.weight is not untied.wte.weight
    logits = tied(torch.zeros(2, 1024, dtype=torch.long, device=META))
    assert logits.shape == (2, 1024, 50257)


@pytest.mark.parametrize("depth, params", [(34, 21_797_672), (101, 44_549_160),
                                           (152, 60_192_808)])
def test_deeper_resnets(depth: int, params: int) -> None:
    with META:
        assert count_params(resnet(depth)) == params


def test_small_models_run_forward_and_backward_on_cpu() -> None:
    torch.manual_seed(0)
    cases: list[tuple[nn.Module, torch.Tensor, tuple[int, ...]]] = [
        (resnet(18, num_classes=5), torch.randn(2, 3, 40, 56), (2, 5)),
        (resnet(50, num_classes=3), torch.randn(2, 3, 32, 32), (2, 3)),
        (mobilenet_v2(0.35, num_classes=4), torch.randn(2, 3, 48, 64), (2, 4)),
        (gpt2(n_layer=2, n_head=2, d_model=8, vocab_size=13, context=6),
         torch.randint(0, 13, (3, 6)), (3, 6, 13)),
    ]
    for model, x, shape in cases:
        out = model(x)
        assert out.shape == shape
        assert torch.isfinite(out).all()
        out.float().sum().backward()
        assert all(p.grad is not None for p in model.parameters())


def test_vgg16_forward_on_cpu_keeps_its_head() -> None:
    """VGG-16's 7×7 adaptive pooling lets a 32×32 image reach the 25,088-wide head."""
    with META:
        model = vgg16(num_classes=10)
    assert model(torch.zeros(1, 3, 32, 32, device=META)).shape == (1, 10)


def test_gpt2_is_causal() -> None:
    """A later token never changes an earlier token's logits."""
    torch.manual_seed(0)
    model = gpt2(n_layer=1, n_head=2, d_model=8, vocab_size=11, context=5).eval()
    a = torch.tensor([[1, 2, 3, 4]])
    b = torch.tensor([[1, 2, 3, 9]])
    torch.testing.assert_close(model(a)[:, :3], model(b)[:, :3])
    assert not torch.allclose(model(a)[:, 3], model(b)[:, 3])


def test_mobilenet_width_multiplier_rounds_to_multiples_of_8() -> None:
    with META:
        model = mobilenet_v2(0.5)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.out_channels % 8 == 0 for c in convs)
    assert convs[-1].out_channels == 1280  # the last layer never shrinks below 1280


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="depth must be one of"):
        resnet(20)
    with pytest.raises(ValueError, match="divisible"):
        gpt2(n_head=5, d_model=12)
    with pytest.raises(ValueError, match="longer than the context"):
        gpt2(n_layer=1, n_head=1, d_model=4, vocab_size=5, context=3)(torch.zeros(1, 4, dtype=torch.long))
