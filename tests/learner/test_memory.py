"""Memory: param_bytes and training_bytes from the model alone; activation_bytes measures what
autograd really keeps; training_memory adds it up."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from course_utils.memory import (
    activation_bytes,
    param_bytes,
    plot_training_memory,
    training_bytes,
    training_memory,
)
from course_utils.zoo import ResNet, gpt2, mobilenet_v2, resnet


def _model_storages(model: nn.Module) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}


def hooked_bytes_on_cpu(model: nn.Module, *inputs: torch.Tensor) -> tuple[int, torch.Tensor]:
    """Saved bytes of a real CPU forward pass, keyed by real addresses."""
    owned, seen = _model_storages(model), {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in owned:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(*inputs)
    return sum(seen.values()), out


def graph_bytes(model: nn.Module, out: torch.Tensor) -> int:
    """Saved bytes read back from the autograd graph itself (each node's ``_saved_*``)."""
    owned, seen, stack, visited = _model_storages(model), {}, [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in visited:
            continue
        visited.add(node)
        for name in dir(node):
            if name.startswith("_saved_"):
                value = getattr(node, name)
                for t in value if isinstance(value, (tuple, list)) else [value]:
                    if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in owned:
                        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        stack.extend(f for f, _ in node.next_functions)
    return sum(seen.values())


class Branches(nn.Module):
    """Two branches that meet by concatenation, and a tied weight: not a Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Conv2d(3, 4, 3, padding=1)
        self.right = nn.Sequential(nn.Conv2d(3, 5, 1), nn.Tanh())
        self.head = nn.Linear(9, 9)
        self.again = nn.Linear(9, 9)
        self.again.weight = self.head.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([torch.relu(self.left(x)), self.right(x)], dim=1).mean((2, 3))
        return self.again(torch.sigmoid(self.head(y)))


def _cases() -> list[tuple[str, nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    return [
        ("mlp", nn.Sequential(nn.Linear(30, 40), nn.ReLU(inplace=True), nn.Linear(40, 5)),
         torch.randn(7, 30)),
        ("resnet", ResNet("bottleneck", [1, 2, 1, 1], num_classes=7, width=8),
         torch.randn(3, 3, 48, 40)),
        ("mobilenet", mobilenet_v2(0.25, num_classes=7), torch.randn(2, 3, 64, 48)),
        ("branches", Branches(), torch.randn(2, 3, 10, 6)),
    ]


@pytest.mark.parametrize("case", range(4), ids=[c[0] for c in _cases()])
def test_meta_count_equals_a_real_cpu_run(case: int) -> None:
    _, model, x = _cases()[case]
    measured = activation_bytes(model, x)
    real, out = hooked_bytes_on_cpu(model, x)
    assert measured == real == graph_bytes(model, out)
    assert measured > x.numel() * 4  # more than the input alone


def test_the_model_is_not_changed() -> None:
    model = resnet(18, num_classes=3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    activation_bytes(model, torch.zeros(4, 3, 64, 64))
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v), k  # running statistics included
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_attention_counts_the_math_kernel() -> None:
    torch.manual_seed(0)
    model = gpt2(n_layer=2, n_head=2, d_model=16, vocab_size=50, context=32)
    tokens = torch.randint(0, 50, (3, 20))
    with sdpa_kernel(SDPBackend.MATH):
        real, _ = hooked_bytes_on_cpu(model, tokens)
    assert activation_bytes(model, tokens) == real


def test_activations_grow_linearly_with_batch() -> None:
    with torch.device("meta"):
        model = resnet(50)
    one, eight = (activation_bytes(model, torch.zeros(b, 3, 224, 224, device="meta"))
                  for b in (1, 8))
    assert eight == pytest.approx(8 * one, rel=1e-2)  # batch norm's per-channel statistics
    assert eight < 8 * one                              # do not grow with the batch
    assert 50 * 2**20 < one < 200 * 2**20  # tens of MB per image, as widely reported


def test_parameter_free_layers_save_too() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    x = torch.zeros(2, 3, 8, 8)
    assert activation_bytes(model, x) > 0
    relu = nn.Sequential(nn.ReLU())
    assert activation_bytes(relu, x) == 0  # nothing requires a gradient: no graph at all
    assert activation_bytes(relu, x.requires_grad_()) == 2 * 3 * 8 * 8 * 4  # keeps its output


def test_training_memory_breakdown() -> None:
    model = nn.Sequential(nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 10))
    model[0].weight.requires_grad_(False)  # frozen: no gradient, no optimizer state
    x = torch.zeros(16, 100)
    mem = training_memory(model, x, optimizer="adam")
    trainable = (50 + 50 * 10 + 10) * 4
    assert mem.weights == param_bytes(model)
    assert mem.gradients == trainable
    assert mem.optimizer_state == 2 * trainable
    assert mem.activations == activation_bytes(model, x)
    assert mem.total == mem.weights + mem.gradients + mem.optimizer_state + mem.activations
    assert training_memory(model, x, optimizer="sgd").optimizer_state == 0
    with pytest.raises(ValueError, match="unknown optimizer"):
        training_memory(model, x, optimizer="lion")
    assert "activations" in str(mem)


def test_stacked_bar_plot() -> None:
    model = nn.Sequential(nn.Linear(100, 50), nn.ReLU())
    mems = [training_memory(model, torch.zeros(b, 100)) for b in (1, 64)]
    ax = plot_training_memory(mems, ["1", "64"])
    assert len(ax.patches) == 8  # 4 parts × 2 bars
    top = max(p.get_y() + p.get_height() for p in ax.patches)
    assert top == pytest.approx(mems[1].total / 2**20)
    assert mems[0].plot().get_ylabel() == "memory (MiB)"
    plt.close("all")


def test_needs_inputs() -> None:
    with pytest.raises(ValueError, match="example inputs"):
        activation_bytes(nn.Linear(2, 2))


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA GPU: compares with torch.cuda.max_memory_allocated")
def test_against_cuda_memory() -> None:
    model = resnet(18, num_classes=10).cuda()
    x = torch.randn(16, 3, 128, 128, device="cuda")
    predicted = activation_bytes(model, x)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = model(x)
    torch.cuda.synchronize()
    # what the forward pass left allocated: saved tensors (the input x was already there)
    held = torch.cuda.memory_allocated() - base - out.numel() * out.element_size()
    held += x.numel() * x.element_size()
    assert held == pytest.approx(predicted, rel=0.05)  # cuDNN may keep small extra buffers
    assert torch.cuda.max_memory_allocated() - base >= 0.95 * (predicted - x.numel() * 4)


def test_param_and_training_bytes() -> None:
    model = nn.Linear(100, 10)  # 1,010 float32 parameters
    assert param_bytes(model) == 4_040
    assert param_bytes(model, dtype=torch.float16) == 2_020
    assert training_bytes(model, "adam") == 4 * 4_040
    assert training_bytes(model, "sgd") == 2 * 4_040
    model.requires_grad_(False)
    assert training_bytes(model, "adam") == 4_040  # frozen: no gradients, no optimizer state
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        training_bytes(model, "lbfgs")
