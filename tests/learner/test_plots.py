"""course_utils.plots: every plot is titled and labelled and leaves the model untouched."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from torch import nn

from course_utils import (
    PALETTE,
    History,
    make_moons_task,
    plot_decision_boundary,
    plot_feature_maps,
    plot_grad_norms,
    plot_learning_curves,
    plot_params_per_layer,
    plot_params_vs_metric,
    set_seed,
)

matplotlib.use("Agg")  # no window, whatever MPLBACKEND says


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labelled(ax: Axes) -> None:
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def _history(offset: float = 0.0, epochs: int = 5) -> History:
    loss = [1.0 / (e + 1) + offset for e in range(epochs)]
    return History(train_loss=loss, train_acc=[0.5 + 0.1 * e for e in range(epochs)],
                   val_loss=[v + 0.1 for v in loss], val_acc=[0.5 + 0.08 * e for e in range(epochs)])


def _snapshot(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def _unchanged(model: nn.Module, before: list[torch.Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, model.state_dict().values(), strict=True))


def test_palette_is_okabe_ito() -> None:
    assert len(PALETTE) == 8 and len(set(PALETTE)) == 8
    assert "#E69F00" in PALETTE and "#0072B2" in PALETTE
    assert all(len(to_rgb(c)) == 3 for c in PALETTE)


def test_learning_curves_single_history() -> None:
    ax = plot_learning_curves(_history())
    _labelled(ax)
    lines = ax.get_lines()
    assert [line.get_linestyle() for line in lines] == ["--", "-"]  # train dashed, val solid
    assert list(lines[1].get_ydata()) == pytest.approx(_history().val_loss)
    assert ax.get_legend() is not None


def test_learning_curves_seeds_give_mean_and_band() -> None:
    runs = [_history(0.0), _history(0.2), _history(0.4)]
    ax = plot_learning_curves(runs, metric="acc", title="three seeds")
    assert ax.get_title() == "three seeds" and ax.get_ylabel() == "accuracy (%)"
    assert len(ax.collections) == 2  # a band for train and one for validation
    ax = plot_learning_curves(runs)
    mean_val = ax.get_lines()[1].get_ydata()
    assert mean_val[0] == pytest.approx(np.mean([r.val_loss[0] for r in runs]))


def test_learning_curves_dict_with_unequal_lengths_and_events() -> None:
    short = _history(epochs=3)
    short.events.append((2, "grew"))
    ax = plot_learning_curves({"a": [_history(), short], "b": _history(0.1)})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("a, val") for label in labels)
    assert any(label.startswith("b, train") for label in labels)
    assert any(t.get_text() == "grew" for t in ax.texts)
    ax = plot_learning_curves(_history(), events=[(3, "here")])
    assert [t.get_text() for t in ax.texts] == ["here"]


def test_learning_curves_refuse_other_inputs() -> None:
    with pytest.raises(TypeError, match="History"):
        plot_learning_curves([1, 2])
    with pytest.raises(ValueError, match="'loss' or 'acc'"):
        plot_learning_curves(_history(), metric="f1")


@pytest.mark.parametrize("outputs", [1, 3])
def test_decision_boundary_leaves_model_alone(outputs: int) -> None:
    set_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, outputs))
    X, y = make_moons_task(60)
    before = _snapshot(model)
    model.train()
    fig, ax = plt.subplots()
    returned = plot_decision_boundary(model, X, y, ax=ax, title="moons", resolution=30)
    assert returned is ax and ax.get_title() == "moons"
    _labelled(ax)
    assert model.training and _unchanged(model, before)
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    plot_decision_boundary(model, X, y, resolution=20)
    assert not model.training


def test_decision_boundary_probability_has_a_colourbar_unless_asked_not_to() -> None:
    X, y = make_moons_task(40)
    ax = plot_decision_boundary(nn.Linear(2, 1), X, y, resolution=20)
    bars = [a for a in ax.figure.axes if a is not ax]
    assert len(bars) == 1 and "probability" in bars[0].get_ylabel()
    assert bars[0].get_ylim() == (0.0, 1.0)
    ax = plot_decision_boundary(nn.Linear(2, 1), X, y, resolution=20, colorbar=False)
    assert ax.figure.axes == [ax]
    ax = plot_decision_boundary(nn.Linear(2, 3), X, y, resolution=20)  # classes: no scale
    assert ax.figure.axes == [ax]


def test_colors_keep_one_colour_per_model_across_figures() -> None:
    colors = {"deep": PALETTE[1], "wide": PALETTE[2]}
    ax = plot_learning_curves({"wide": _history(), "deep": _history(0.1)}, colors=colors)
    by_label = {line.get_label(): line.get_color() for line in ax.get_lines()}
    assert by_label["deep, val"] == by_label["deep, train"] == PALETTE[1]
    assert by_label["wide, val"] == PALETTE[2]
    ax = plot_learning_curves({"new": _history(), "deep": _history()}, colors=colors)
    assert ax.get_lines()[0].get_color() == PALETTE[0]  # unnamed labels: palette order
    ax = plot_grad_norms({"shallow": [1.0, 0.1], "deep": [1.0, 0.01]}, colors=colors)
    assert [line.get_color() for line in ax.get_lines()] == [PALETTE[0], PALETTE[1]]


def test_decision_boundary_needs_two_features() -> None:
    with pytest.raises(ValueError, match="2 features"):
        plot_decision_boundary(nn.Linear(3, 1), torch.zeros(5, 3), torch.zeros(5, 1))


def test_grad_norms_one_model_and_several() -> None:
    ax = plot_grad_norms({"0": 0.1, "2": 0.01, "4": 0.001})
    _labelled(ax)
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2", "4"]
    ax = plot_grad_norms({"sigmoid": {"0": 1e-5, "2": 1e-3}, "relu": [0.1, 0.2]}, log=False)
    assert ax.get_yscale() == "linear" and len(ax.get_lines()) == 2
    assert ax.get_legend() is not None


def test_params_vs_metric() -> None:
    ax = plot_params_vs_metric([41, 261, 1000], [0.9, 0.95, 0.96], labels=["a", "b", "c"],
                               ylabel="validation accuracy (%)")
    _labelled(ax)
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="same length"):
        plot_params_vs_metric([1, 2], [0.5])


def test_feature_maps_from_a_model_layer() -> None:
    set_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 20, 3))
    before = _snapshot(model)
    fig = plot_feature_maps(model, torch.randn(1, 8, 8), layer="2", max_maps=10)
    assert isinstance(fig, Figure) and len(fig.axes) == 10
    assert "10 of 20" in fig.get_suptitle() and "'2'" in fig.get_suptitle()
    assert fig.supxlabel is not None and fig.axes[0].get_title() == "channel 0"
    assert model.training and _unchanged(model, before)
    fig = plot_feature_maps(model, torch.randn(1, 1, 8, 8))  # default: first Conv2d
    assert len(fig.axes) == 4 and "'0'" in fig.get_suptitle()


def test_feature_maps_on_one_shared_scale_have_a_colourbar() -> None:
    set_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
    fig = plot_feature_maps(model, torch.randn(1, 8, 8), layer="1", shared_scale=True)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 4 and len(fig.axes) == 5  # four maps and the colourbar
    assert len({im.get_clim() for im in images}) == 1
    assert images[0].get_clim()[0] >= 0  # after the ReLU nothing is negative


def test_feature_maps_errors() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with pytest.raises(ValueError, match="no Conv2d"):
        plot_feature_maps(model, torch.randn(1, 8, 8))
    with pytest.raises(KeyError, match="no layer named 'x'"):
        plot_feature_maps(model, torch.randn(1, 8, 8), layer="x")
    with pytest.raises(ValueError, match="C×H×W"):
        plot_feature_maps(nn.Conv2d(1, 2, 3), torch.randn(8, 8))


def test_params_per_layer_scale_and_counts() -> None:
    model = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(),
                          nn.Linear(10, 1))
    ax = plot_params_per_layer(model)
    _labelled(ax)
    assert [p.get_width() for p in ax.patches] == [30, 110, 11]
    assert ax.get_xscale() == "linear"  # 110 / 11 < 100
    big = nn.Sequential(nn.Linear(1000, 500), nn.Linear(500, 1))
    assert plot_params_per_layer(big).get_xscale() == "log"
    assert plot_params_per_layer(model, log=True).get_xscale() == "log"
    with pytest.raises(ValueError, match="no parameters"):
        plot_params_per_layer(nn.ReLU())
