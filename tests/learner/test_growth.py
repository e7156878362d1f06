"""Function-preserving growth (course_utils.growth): outputs unchanged, refusals, optimizers."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from course_utils.growth import (
    GrowingMLP,
    add_to_optimizer,
    net2deeper,
    net2wider,
    replace_in_optimizer,
)

SEEDS = [0, 1, 2, 3]


class Clamp01(nn.Module):
    """An activation the module does not know by name, but idempotent."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(0, 1)


class Double(nn.Module):
    """An unknown activation that is not idempotent."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x


def _snapshot(*modules: nn.Module) -> list[dict[str, torch.Tensor]]:
    return [{k: v.clone() for k, v in m.state_dict().items()} for m in modules]


def _assert_same_state(before: list[dict[str, torch.Tensor]], *modules: nn.Module) -> None:
    for saved, module in zip(before, modules, strict=True):
        now = module.state_dict()
        assert saved.keys() == now.keys()
        for key in saved:
            assert torch.equal(saved[key], now[key]), f"{key} of {module} was modified"


def _set_batchnorm_stats(bn: nn.Module, generator: torch.Generator) -> None:
    """Give a BatchNorm non-trivial γ, β and running statistics."""
    n = bn.num_features
    with torch.no_grad():
        bn.weight.copy_(torch.rand(n, generator=generator) + 0.5)
        bn.bias.copy_(torch.randn(n, generator=generator))
        bn.running_mean.copy_(torch.randn(n, generator=generator))
        bn.running_var.copy_(torch.rand(n, generator=generator) + 0.1)


# ---------------------------------------------------------------- net2deeper


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("activation", [nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Identity, Clamp01])
def test_net2deeper_linear_keeps_outputs(seed: int, activation: type[nn.Module]) -> None:
    torch.manual_seed(seed)
    n_in, n_out = torch.randint(1, 9, (2,)).tolist()
    first, head = nn.Linear(n_in, n_out), nn.Linear(n_out, 3)
    with torch.no_grad():
        first.weight.mul_(10)  # push values past ReLU6/Hardtanh's clamps
    model = nn.Sequential(first, activation(), head).eval()
    x = torch.randn(16, n_in)
    before = model(x)
    grown = nn.Sequential(net2deeper(first, activation), activation(), head).eval()
    assert_close(grown(x), before)
    assert grown[0][0] is first, "the original layer is reused, not copied"
    new = grown[0][2]
    assert isinstance(new, nn.Linear) and (new.in_features, new.out_features) == (n_out, n_out)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("kernel", "stride", "new_kernel"), [(3, 1, None), (5, 2, None), ((3, 5), 1, None), (2, 2, 3)]
)
def test_net2deeper_conv_keeps_outputs(seed: int, kernel, stride: int, new_kernel) -> None:
    torch.manual_seed(seed)
    c_in, c_out = torch.randint(1, 6, (2,)).tolist()
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride)
    model = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(c_out, 2, 3)).eval()
    x = torch.randn(4, c_in, 11, 13)
    before = model(x)
    deeper = net2deeper(conv, nn.ReLU, kernel_size=new_kernel)
    model[0] = deeper
    assert_close(model(x), before)
    new = deeper[2]
    assert new.stride == (1, 1) and new.groups == 1 and new.in_channels == c_out


@pytest.mark.parametrize("activation", [nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.GELU, Double])
def test_net2deeper_refuses_non_idempotent_activations(activation: type[nn.Module]) -> None:
    with pytest.raises(ValueError, match="φ\\(φ\\(v\\)\\) = φ\\(v\\).*approximate=True"):
        net2deeper(nn.Linear(3, 4), activation)


def test_net2deeper_approximate_opt_in_changes_the_output_a_little() -> None:
    torch.manual_seed(0)
    layer, head = nn.Linear(3, 4), nn.Linear(4, 2)
    x = torch.randn(32, 3)
    before = head(torch.tanh(layer(x)))
    after = head(torch.tanh(net2deeper(layer, nn.Tanh, approximate=True)(x)))
    assert not torch.allclose(after, before), "tanh(tanh(v)) != tanh(v): outputs must differ"
    assert (after - before).abs().max() < 1.0


def test_net2deeper_refuses_even_kernels_unless_told() -> None:
    conv = nn.Conv2d(2, 3, 4)
    with pytest.raises(ValueError, match="even kernel.*kernel_size=3"):
        net2deeper(conv)
    with pytest.raises(ValueError, match="even kernel"):
        net2deeper(nn.Conv2d(2, 3, 3), kernel_size=(3, 2))
    assert net2deeper(conv, approximate=True)[2].kernel_size == (4, 4)


def test_net2deeper_refuses_other_layers_and_non_modules() -> None:
    with pytest.raises(TypeError, match="Linear and nn.Conv2d.*LSTM"):
        net2deeper(nn.LSTM(3, 4))
    with pytest.raises(TypeError, match="activation must be an nn.Module"):
        net2deeper(nn.Linear(3, 4), lambda: torch.relu)


def test_net2deeper_accepts_an_activation_instance() -> None:
    act = nn.ReLU(inplace=True)
    deeper = net2deeper(nn.Linear(3, 4), act)
    assert isinstance(deeper[1], nn.ReLU) and deeper[1] is not act


# ---------------------------------------------------------------- net2wider


@pytest.mark.parametrize("seed", SEEDS)
def test_net2wider_linear_keeps_outputs_and_leaves_inputs_untouched(seed: int) -> None:
    torch.manual_seed(seed)
    n_in, width, n_out = torch.randint(1, 9, (3,)).tolist()
    new_width = width + int(torch.randint(0, 3 * width + 1, ()))
    a, b = nn.Linear(n_in, width), nn.Linear(width, n_out)
    saved = _snapshot(a, b)
    x = torch.randn(16, n_in)
    wide_a, wide_b = net2wider(a, b, new_width, generator=torch.Generator().manual_seed(seed))
    assert (wide_a.out_features, wide_b.in_features) == (new_width, new_width)
    assert tuple(wide_a.weight.shape) == (new_width, n_in)
    assert tuple(wide_b.weight.shape) == (n_out, new_width)
    assert_close(wide_b(torch.relu(wide_a(x))), b(torch.relu(a(x))))
    _assert_same_state(saved, a, b)
    shared = {id(p) for p in [*a.parameters(), *b.parameters()]}
    assert not shared & {id(p) for p in [*wide_a.parameters(), *wide_b.parameters()]}


@pytest.mark.parametrize("seed", SEEDS)
def test_net2wider_conv_keeps_outputs(seed: int) -> None:
    torch.manual_seed(seed)
    c_in, width, c_out = torch.randint(1, 6, (3,)).tolist()
    a = nn.Conv2d(c_in, width, 3, padding=1)
    b = nn.Conv2d(width, c_out, 5, stride=2, bias=False)
    saved = _snapshot(a, b)
    x = torch.randn(2, c_in, 9, 9)
    wide_a, wide_b = net2wider(a, b, width + 3, generator=torch.Generator().manual_seed(seed))
    assert wide_a.out_channels == wide_b.in_channels == width + 3
    assert wide_b.bias is None
    assert_close(wide_b(torch.tanh(wide_a(x))), b(torch.tanh(a(x))))
    _assert_same_state(saved, a, b)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("train_mode", [False, True])
def test_net2wider_with_batchnorm2d_keeps_outputs(seed: int, train_mode: bool) -> None:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    a, bn, b = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 5, 3)
    _set_batchnorm_stats(bn, g)
    bn.num_batches_tracked += 7
    saved = _snapshot(a, bn, b)
    model = nn.Sequential(a, bn, nn.ReLU(), b).train(train_mode)
    x = torch.randn(6, 3, 8, 8)
    before = model(x)
    saved = _snapshot(a, bn, b)  # a train-mode forward updates the running stats
    wide_a, wide_b, wide_bn = net2wider(a, b, 9, batchnorm=bn, generator=g)
    assert wide_bn.num_features == 9 and wide_bn.running_mean.shape == (9,)
    assert int(wide_bn.num_batches_tracked) == int(bn.num_batches_tracked)
    grown = nn.Sequential(wide_a, wide_bn, nn.ReLU(), wide_b).train(train_mode)
    assert_close(grown(x), before)
    _assert_same_state(saved, a, bn, b)


@pytest.mark.parametrize("seed", SEEDS)
def test_net2wider_with_batchnorm1d_in_eval_mode(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    a, bn, b = nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Linear(6, 2)
    _set_batchnorm_stats(bn, g)
    x = torch.randn(10, 5, generator=g)
    before = nn.Sequential(a, bn, nn.ReLU(), b).eval()(x)
    wide_a, wide_b, wide_bn = net2wider(a, b, 11, batchnorm=bn, generator=g)
    assert_close(nn.Sequential(wide_a, wide_bn, nn.ReLU(), wide_b).eval()(x), before)


@pytest.mark.parametrize("seed", SEEDS)
def test_net2wider_conv_then_linear_after_flatten(seed: int) -> None:
    torch.manual_seed(seed)
    conv, head = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 3 * 3, 10)
    x = torch.randn(5, 1, 6, 6)

    def run(c: nn.Module, h: nn.Module) -> torch.Tensor:
        return nn.Sequential(c, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), h)(x)

    before = run(conv, head)
    wide_conv, wide_head = net2wider(conv, head, 7, generator=torch.Generator().manual_seed(seed))
    assert wide_head.in_features == 7 * 9
    assert_close(run(wide_conv, wide_head), before)


def test_net2wider_copies_follow_the_generator() -> None:
    a, b = nn.Linear(3, 4), nn.Linear(4, 2)
    first = net2wider(a, b, 12, generator=torch.Generator().manual_seed(5))[0]
    again = net2wider(a, b, 12, generator=torch.Generator().manual_seed(5))[0]
    assert torch.equal(first.weight, again.weight)
    rows = {tuple(r.tolist()) for r in first.weight}
    assert rows == {tuple(r.tolist()) for r in a.weight}, "new rows copy existing rows"


def test_net2wider_noise_breaks_symmetry_and_exactness_slightly() -> None:
    torch.manual_seed(0)
    a, b = nn.Linear(3, 4), nn.Linear(4, 2)
    x = torch.randn(8, 3)
    wide_a, wide_b = net2wider(a, b, 8, noise_std=1e-2)
    assert torch.equal(wide_a.weight[:4], a.weight), "original units are kept as they were"
    copies = {tuple(r.tolist()) for r in wide_a.weight[4:]}
    assert not copies & {tuple(r.tolist()) for r in a.weight}, "copies got noise"
    diff = (wide_b(torch.relu(wide_a(x))) - b(torch.relu(a(x)))).abs().max()
    assert 0 < diff < 0.1


def test_net2wider_same_width_is_an_exact_copy() -> None:
    a, b = nn.Linear(3, 4), nn.Linear(4, 2)
    wide_a, wide_b = net2wider(a, b, 4)
    assert torch.equal(wide_a.weight, a.weight) and torch.equal(wide_b.weight, b.weight)


def test_net2wider_errors_teach() -> None:
    a, b = nn.Linear(3, 4), nn.Linear(4, 2)
    with pytest.raises(ValueError, match="only add units: new_width=3 .* current width 4"):
        net2wider(a, b, 3)
    with pytest.raises(ValueError, match="has 4 outputs but next_layer .*in_features=5.* 5 inputs"):
        net2wider(a, nn.Linear(5, 2), 6)
    with pytest.raises(TypeError, match="LSTM"):
        net2wider(nn.LSTM(3, 4), b, 6)
    with pytest.raises(TypeError, match="Linear layer followed by a Conv2d"):
        net2wider(a, nn.Conv2d(4, 2, 3), 6)
    with pytest.raises(ValueError, match="in_features=10, which is not a multiple of .*=4"):
        net2wider(nn.Conv2d(1, 4, 3), nn.Linear(10, 2), 6)
    with pytest.raises(ValueError, match="grouped"):
        net2wider(nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 2, 3), 6)
    with pytest.raises(ValueError, match="batchnorm .* 5 features but layer .* 4 outputs"):
        net2wider(a, b, 6, batchnorm=nn.BatchNorm1d(5))


# ---------------------------------------------------------------- optimizers


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> None:
    optimizer.zero_grad()
    model(x).pow(2).mean().backward()
    optimizer.step()


def test_the_optimizer_trap_and_its_fix() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.append(nn.Linear(8, 3))  # added after the optimizer was built
    start = model[2].weight.detach().clone()
    x = torch.randn(16, 4)
    for _ in range(5):
        _step(model, optimizer, x)
    assert model[2].weight.grad is not None, "it gets gradients..."
    assert torch.equal(model[2].weight, start), "...but the optimizer never updates it"
    assert add_to_optimizer(optimizer, model[2].parameters()) == 2
    _step(model, optimizer, x)
    assert not torch.equal(model[2].weight, start)


def test_add_to_optimizer_skips_held_params_and_copies_settings() -> None:
    old, new = nn.Linear(2, 2), nn.Linear(2, 2)
    optimizer = torch.optim.SGD(old.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
    assert add_to_optimizer(optimizer, [*old.parameters(), *new.parameters(), new.weight]) == 2
    assert add_to_optimizer(optimizer, new) == 0
    assert len(optimizer.param_groups) == 2
    group = optimizer.param_groups[1]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.5, 0.9, 1e-3)
    with pytest.raises(TypeError, match="not a single tensor"):
        add_to_optimizer(optimizer, new.weight)


def test_resizing_in_place_breaks_adam_and_replace_in_optimizer_fixes_it() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.randn(8, 4)
    _step(model, optimizer, x)
    layer = model[0]
    layer.weight.data = torch.randn(6, 4)  # same Parameter objects, new sizes
    layer.bias.data = torch.zeros(6)
    with pytest.raises(RuntimeError, match="size"):
        _step(model, optimizer, x)  # Adam's exp_avg still has the old shape
    assert replace_in_optimizer(optimizer, layer.parameters(), layer.parameters()) == 2
    assert len(optimizer.state) == 0
    start = layer.weight.detach().clone()
    _step(model, optimizer, x)
    assert not torch.equal(layer.weight, start)


def test_replace_in_optimizer_drops_state_and_keeps_the_group() -> None:
    a, b, c = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 5)
    optimizer = torch.optim.Adam([{"params": a.parameters()}, {"params": b.parameters(),
                                                                "lr": 0.1}])
    nn.Sequential(a, b)(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    assert len(optimizer.state) == 4
    assert replace_in_optimizer(optimizer, b.parameters(), c.parameters()) == 2
    assert len(optimizer.state) == 2 and b.weight not in optimizer.state
    assert [p.shape[0] for p in optimizer.param_groups[1]["params"]] == [5, 5]
    assert optimizer.param_groups[1]["lr"] == 0.1
    # nothing old was held: the new ones get their own group
    assert replace_in_optimizer(optimizer, [], nn.Linear(2, 2)) == 2
    assert len(optimizer.param_groups) == 3


# ---------------------------------------------------------------- GrowingMLP


@pytest.mark.parametrize("seed", SEEDS)
def test_growing_mlp_grows_without_changing_its_outputs(seed: int) -> None:
    torch.manual_seed(seed)
    model = GrowingMLP(6, [5, 4], 3).eval()
    x = torch.randn(20, 6)
    before = model(x)
    growth = model.deepen(0)
    assert growth.old == [] and [p.shape for p in growth.new] == [(5, 5), (5,)]
    assert model.widths == [5, 5, 4]
    assert_close(model(x), before)
    growth = model.widen(-1, 9, generator=torch.Generator().manual_seed(seed))
    assert model.widths == [5, 5, 9]
    assert len(growth.old) == len(growth.new) == 4
    assert_close(model(x), before)
    model.widen(0, 7)
    model.deepen(2)
    assert model.widths == [7, 5, 9, 9]
    assert_close(model(x), before)


def test_growing_mlp_repr_widths_and_errors() -> None:
    model = GrowingMLP(64, [32, 16], 10)
    assert model.widths == [32, 16]
    assert "sizes=64 → 32 → 16 → 10" in repr(model)
    assert "(activation): ReLU()" in repr(model)
    with pytest.raises(IndexError, match="hidden layer 2 does not exist.*\\[32, 16\\]"):
        model.deepen(2)
    with pytest.raises(ValueError, match="only add units"):
        model.widen(0, 8)
    with pytest.raises(ValueError, match="positive ints"):
        GrowingMLP(4, [0], 2)
    with pytest.raises(IndexError):
        GrowingMLP(4, [], 2).deepen(0)


def test_training_continues_after_growth_with_adam() -> None:
    torch.manual_seed(0)
    model = GrowingMLP(4, [6, 5], 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))

    def step() -> float:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(3):
        step()
    deepened = model.deepen(1, optimizer=optimizer)
    widened = model.widen(0, 10, optimizer=optimizer)  # leaves the deepened layer as it is
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert held == {id(p) for p in model.parameters()}, "optimizer holds exactly the model's"
    new = deepened.new + widened.new
    assert {id(p) for p in new} <= {id(p) for p in model.parameters()}
    start = [p.detach().clone() for p in new]
    losses = [step() for _ in range(20)]
    assert all(not torch.equal(p, s) for p, s in zip(new, start, strict=True))
    assert losses[-1] < losses[0]


def test_growing_mlp_copies_are_deterministic() -> None:
    torch.manual_seed(0)
    model = GrowingMLP(3, [4], 2)
    twin = copy.deepcopy(model)
    model.widen(0, 9, generator=torch.Generator().manual_seed(1))
    twin.widen(0, 9, generator=torch.Generator().manual_seed(1))
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q)


# ---------------------------------------------------------------- regressions (issue 13)


def test_replace_in_optimizer_keeps_each_new_param_in_its_old_params_group() -> None:
    # regression: every new parameter went to the group of the FIRST old one
    a, b = nn.Linear(2, 3), nn.Linear(3, 2)
    optimizer = torch.optim.SGD([{"params": a.parameters(), "lr": 0.1},
                                 {"params": b.parameters(), "lr": 0.01, "weight_decay": 0.5}])
    wide_a, wide_b = net2wider(a, b, 5)
    old = [*a.parameters(), *b.parameters()]
    assert replace_in_optimizer(optimizer, old, [*wide_a.parameters(), *wide_b.parameters()]) == 4
    first, second = optimizer.param_groups
    assert [p.shape for p in first["params"]] == [wide_a.weight.shape, wide_a.bias.shape]
    assert [p.shape for p in second["params"]] == [wide_b.weight.shape, wide_b.bias.shape]
    assert (first["lr"], second["lr"], second["weight_decay"]) == (0.1, 0.01, 0.5)


def test_growing_mlp_widen_keeps_per_layer_groups() -> None:
    torch.manual_seed(0)
    model = GrowingMLP(4, [3], 2)
    first, last = model.layers
    optimizer = torch.optim.Adam([{"params": first.parameters(), "lr": 0.1},
                                  {"params": last.parameters(), "lr": 0.001}])
    model.widen(0, 6, optimizer=optimizer)
    assert [tuple(p.shape) for p in optimizer.param_groups[0]["params"]] == [(6, 4), (6,)]
    assert [tuple(p.shape) for p in optimizer.param_groups[1]["params"]] == [(2, 6), (2,)]


def test_growing_mlp_widen_can_carry_adam_state() -> None:
    torch.manual_seed(0)
    model = GrowingMLP(4, [3], 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.randn(8, 4), torch.randint(2, (8,))
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.widen(0, 6, optimizer=optimizer, carry_state=True)
    state = optimizer.state[model.layers[0].weight]
    assert state["exp_avg"].shape == (6, 4) and state["step"].item() == 3
    assert state["exp_avg"].abs().sum() > 0 and state["exp_avg_sq"].abs().sum() > 0
    fresh = GrowingMLP(4, [3], 2)
    plain = torch.optim.Adam(fresh.parameters(), lr=0.01)
    fresh.widen(0, 6, optimizer=plain)  # without carry_state: new parameters, no state yet
    assert fresh.layers[0].weight not in plain.state


def test_net2wider_exposes_its_mapping_and_still_unpacks() -> None:
    torch.manual_seed(0)
    a, b, bn = nn.Linear(3, 4), nn.Linear(4, 2), nn.BatchNorm1d(4)
    result = net2wider(a, b, 7, generator=torch.Generator().manual_seed(1))
    first, second = result  # the old two-value unpacking keeps working
    assert isinstance(first, nn.Linear) and isinstance(second, nn.Linear)
    assert result.mapping.shape == (7,) and result.mapping[:4].tolist() == [0, 1, 2, 3]
    assert torch.equal(first.weight, a.weight[result.mapping])
    assert torch.equal(result.counts, torch.bincount(result.mapping, minlength=4))
    assert len(net2wider(a, b, 7, batchnorm=bn)) == 3


def _adam_after_steps(a: nn.Linear, b: nn.Linear, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.Adam([*a.parameters(), *b.parameters()], lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(b(torch.relu(a(x))), y).backward()
        optimizer.step()
    return optimizer


def test_net2wider_carries_adam_state_through_the_mapping() -> None:
    torch.manual_seed(0)
    a, b = nn.Linear(5, 4), nn.Linear(4, 3)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    optimizer = _adam_after_steps(a, b, x, y)
    old_state = {name: {k: v.clone() for k, v in optimizer.state[p].items()}
                 for name, p in [("aw", a.weight), ("ab", a.bias), ("bw", b.weight),
                                 ("bb", b.bias)]}
    wide_a, wide_b = result = net2wider(a, b, 7, optimizer=optimizer,
                                        generator=torch.Generator().manual_seed(0))
    m, n = result.mapping, result.counts[result.mapping].float()
    held = [p for group in optimizer.param_groups for p in group["params"]]
    assert {id(p) for p in held} == {id(p) for p in [*wide_a.parameters(), *wide_b.parameters()]}
    assert a.weight not in optimizer.state
    state = optimizer.state
    assert_close(state[wide_a.weight]["exp_avg"], old_state["aw"]["exp_avg"][m] / n[:, None])
    assert_close(state[wide_a.weight]["exp_avg_sq"], old_state["aw"]["exp_avg_sq"][m] / n[:, None] ** 2)
    assert_close(state[wide_a.bias]["exp_avg"], old_state["ab"]["exp_avg"][m] / n)
    assert_close(state[wide_b.weight]["exp_avg"], old_state["bw"]["exp_avg"][:, m])
    assert_close(state[wide_b.bias]["exp_avg_sq"], old_state["bb"]["exp_avg_sq"])
    assert float(state[wide_a.weight]["step"]) == 3.0
    # the carried first moment is the average gradient the widened net would have seen:
    # for a fresh gradient, the widened net's gradient obeys the same mapping
    wide_a.zero_grad()
    wide_b.zero_grad()
    nn.functional.cross_entropy(wide_b(torch.relu(wide_a(x))), y).backward()
    a.zero_grad()
    b.zero_grad()
    nn.functional.cross_entropy(b(torch.relu(a(x))), y).backward()
    assert_close(wide_a.weight.grad, a.weight.grad[m] / n[:, None])
    assert_close(wide_b.weight.grad, b.weight.grad[:, m])
    optimizer.step()  # and the optimizer accepts the carried state


def test_net2wider_carries_state_with_batchnorm_and_conv() -> None:
    torch.manual_seed(0)
    conv, bn, head = nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Conv2d(3, 2, 1)
    optimizer = torch.optim.Adam([*conv.parameters(), *bn.parameters(), *head.parameters()])
    head(torch.relu(bn(conv(torch.randn(4, 1, 5, 5))))).sum().backward()
    optimizer.step()
    result = net2wider(conv, head, 5, batchnorm=bn, optimizer=optimizer)
    assert optimizer.state[result[2].weight]["exp_avg"].shape == (5,)
    assert optimizer.state[result[0].weight]["exp_avg_sq"].shape == (5, 1, 3, 3)
    assert optimizer.state[result[1].weight]["exp_avg"].shape == (2, 5, 1, 1)


@pytest.mark.parametrize("activation", [nn.Tanh, nn.SiLU, nn.GELU, nn.Sigmoid, nn.ReLU])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_net2deeper_residual_is_exact_for_any_activation(activation, batchnorm: bool) -> None:
    from course_utils.growth import net2deeper_residual

    torch.manual_seed(0)
    layer = nn.Linear(5, 6)
    block = nn.Sequential(layer, activation())
    x = torch.randn(8, 5)
    deeper = nn.Sequential(block, net2deeper_residual(layer, activation, batchnorm=batchnorm))
    for mode in (True, False):
        deeper.train(mode)
        assert_close(deeper(x), block(x))
    # and it trains: after one step the new block is no longer zero
    optimizer = torch.optim.SGD(deeper.parameters(), lr=0.1)
    deeper.train()
    deeper(x).pow(2).sum().backward()
    optimizer.step()
    assert deeper[1].branch[-1].weight.abs().sum() > 0


def test_net2deeper_residual_conv_after_a_conv_bn_relu_block() -> None:
    from course_utils.growth import net2deeper_residual

    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    block = nn.Sequential(conv, nn.BatchNorm2d(4), nn.ReLU()).eval()
    x = torch.randn(3, 2, 6, 6)
    deeper = nn.Sequential(block, net2deeper_residual(conv, batchnorm=True)).eval()
    assert_close(deeper(x), block(x))
    with pytest.raises(ValueError, match="even kernel"):
        net2deeper_residual(conv, kernel_size=2)
    with pytest.raises(TypeError, match="Linear and nn.Conv2d"):
        net2deeper_residual(nn.ReLU())


def test_net2deeper_inside_conv_bn_relu_goes_after_the_relu() -> None:
    # the documented placement: after the block's ReLU the output is unchanged; between the
    # conv and its BatchNorm the inserted ReLU acts before the BatchNorm and changes it
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.bias.uniform_(-1, 1)
    block = nn.Sequential(conv, bn, nn.ReLU()).eval()
    x = torch.randn(3, 2, 6, 6)
    before = block(x)
    new = net2deeper(conv)[-1]
    after_relu = nn.Sequential(*block, new, nn.ReLU()).eval()
    assert_close(after_relu(x), before)
    after_conv = nn.Sequential(net2deeper(conv), bn, nn.ReLU()).eval()
    assert (after_conv(x) - before).abs().max() > 1e-3
