"""The shared rules of ``course_utils._meta``: meta replicas, the lazy-layer check, and every
module getting its own train/eval mode back from whatever evaluates, plots or compares it."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch import nn

from course_utils._meta import LazyModuleError, check_initialised, meta_replica, preserved_mode, to_meta
from course_utils.compare import compare_models
from course_utils.data import make_loaders
from course_utils.plots import plot_decision_boundary, plot_feature_maps
from course_utils.training import evaluate, fit

matplotlib.use("Agg")


def _half_frozen_mlp() -> nn.Sequential:
    """Trains, except its BatchNorm, which the user froze in eval mode (a common fine-tuning set-up)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    model.train()
    model[1].eval()
    return model


def _half_frozen_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 2))
    model.train()
    model[1].eval()
    return model


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def _loader():
    X = torch.randn(64, 2)
    y = (X[:, :1] > 0).float()
    return make_loaders(X, y, batch_size=16)[0]


def test_preserved_mode_gives_each_module_its_own_mode_back() -> None:
    model = _half_frozen_mlp()
    before = _modes(model)
    assert before == [True, True, False, True, True]
    with preserved_mode(model):
        model.eval()
        assert not any(_modes(model))
    assert _modes(model) == before
    with pytest.raises(RuntimeError), preserved_mode(model):  # also when the block raises
        model.train()
        raise RuntimeError("boom")
    assert _modes(model) == before


def test_modules_added_inside_the_block_take_the_models_mode() -> None:
    model = nn.Sequential(nn.Linear(2, 2)).eval()
    with preserved_mode(model):
        model.train()
        model.append(nn.Dropout())  # a new module, in train mode
    assert _modes(model) == [False, False, False]


def test_evaluate_gives_every_module_its_mode_back() -> None:
    model = _half_frozen_mlp()
    before = _modes(model)
    evaluate(model, _loader())  # the default loss is found with one eval-mode forward pass too
    assert _modes(model) == before
    evaluate(model, _loader(), nn.BCEWithLogitsLoss())
    assert _modes(model) == before


def test_fit_gives_every_module_its_mode_back() -> None:
    model = _half_frozen_mlp()
    before = _modes(model)
    fit(model, _loader(), _loader(), epochs=2, progress=False)
    assert _modes(model) == before


def test_the_plots_give_every_module_its_mode_back() -> None:
    model = _half_frozen_mlp()
    before = _modes(model)
    plot_decision_boundary(model, torch.randn(20, 2), torch.ones(20, 1), resolution=10)
    assert _modes(model) == before
    cnn = _half_frozen_cnn()
    before = _modes(cnn)
    plot_feature_maps(cnn, torch.randn(1, 8, 8))
    assert _modes(cnn) == before
    matplotlib.pyplot.close("all")


def test_compare_models_gives_every_module_its_mode_back() -> None:
    mlp, cnn = _half_frozen_mlp(), _half_frozen_cnn()
    before = _modes(mlp), _modes(cnn)
    compare_models({"mlp": mlp}, (2,), repeats=1, warmup=0)
    compare_models({"cnn": cnn}, (1, 8, 8), repeats=1, warmup=0)
    assert (_modes(mlp), _modes(cnn)) == before


def test_meta_replica_shares_nothing_and_keeps_ties() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight  # tied, as in a language model
    replica = meta_replica(model)
    assert all(p.is_meta for p in replica.parameters())
    assert replica[0].weight is replica[1].weight
    assert not model[0].weight.is_meta


def test_to_meta_follows_containers() -> None:
    moved = to_meta({"x": torch.zeros(2), "rest": (torch.ones(1), 3)})
    assert moved["x"].is_meta and moved["rest"][0].is_meta and moved["rest"][1] == 3


def test_check_initialised_names_every_lazy_layer() -> None:
    with pytest.raises(LazyModuleError, match=r"'0' \(LazyLinear\), '2' \(LazyConv2d\)"):
        check_initialised(nn.Sequential(nn.LazyLinear(3), nn.ReLU(), nn.LazyConv2d(4, 3)))
