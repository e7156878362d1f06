"""draw_network: what it draws (circles, highlighted weights, elision) and how it refuses."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from torch import nn

from course_utils.diagrams import draw_network, network_widths


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _count(ax: Axes, gid: str) -> int:
    return sum(a.get_gid() == gid for a in [*ax.patches, *ax.lines, *ax.texts])


def _texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_returns_axes_with_a_default_title_giving_the_count() -> None:
    ax = draw_network([10, 18, 20, 5])
    assert isinstance(ax, Axes)
    assert ax.get_title() == "10 → 18 → 20 → 5 network: 683 parameters"


def test_custom_title_and_given_axes_are_used() -> None:
    _, given = plt.subplots()
    ax = draw_network([3, 2], ax=given, title="tiny")
    assert ax is given and ax.get_title() == "tiny"


def test_one_circle_per_neuron_for_a_small_network() -> None:
    ax = draw_network([8, 4, 2])
    assert _count(ax, "neuron") == 14
    assert _count(ax, "bias") == 0 and _count(ax, "highlight") == 0


def test_widths_are_read_from_a_sequential() -> None:
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Dropout(0.1), nn.Linear(4, 2),
                          nn.Sigmoid())
    assert network_widths(model) == [8, 4, 2]
    ax = draw_network(model)
    assert _count(ax, "neuron") == 14
    assert "46 parameters" in ax.get_title()


def test_title_counts_the_models_real_parameters_without_bias() -> None:
    model = nn.Sequential(nn.Linear(8, 4, bias=False), nn.ReLU(), nn.Linear(4, 2))
    assert "42 parameters" in draw_network(model).get_title()


def test_highlight_draws_n_incoming_weights_plus_the_bias() -> None:
    ax = draw_network([8, 4, 2], highlight=(1, 2))
    assert _count(ax, "highlight") == 8 + 1  # 8 weights and the bias line
    assert _count(ax, "bias") == 1
    assert _count(ax, "highlighted-neuron") == 1
    assert any("8 weights" in t and "9 parameters" in t for t in _texts(ax))


def test_highlight_in_the_output_layer() -> None:
    ax = draw_network([8, 4, 2], highlight=(2, 1))
    assert _count(ax, "highlight") == 4 + 1
    assert any("5 parameters" in t for t in _texts(ax))


def test_big_layers_are_elided_with_a_count_label() -> None:
    ax = draw_network([784, 128, 10], max_neurons=10)
    texts = _texts(ax)
    assert any("784 features" in t for t in texts) and any("128 units" in t for t in texts)
    assert texts.count("⋮") == 2  # input and hidden are elided, the 10 outputs are not
    assert _count(ax, "neuron") == 8 + 8 + 10


def test_highlight_behind_an_elided_column_says_how_many_weights_are_not_drawn() -> None:
    ax = draw_network([784, 128, 10], highlight=(1, 60))
    assert _count(ax, "highlight") == 8 + 1  # only the 8 drawn inputs get a line
    assert any("784 weights (776 not drawn)" in t for t in _texts(ax))
    assert _count(ax, "highlighted-neuron") == 1  # neuron 60 is drawn although elided


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), r"layer '0' \(Conv2d\) is not supported"),
        (nn.Sequential(nn.Linear(4, 4), nn.Flatten()), r"layer '1' \(Flatten\) is not supported"),
        (nn.Sequential(nn.Linear(8, 8), nn.MultiheadAttention(8, 2)),
         r"layer '1' \(MultiheadAttention\) is not supported"),
        (nn.Sequential(nn.Linear(10, 18), nn.Linear(20, 5)), r"layer '1'.*do not chain"),
        (nn.Sequential(nn.LazyLinear(4)), r"layer '0' \(LazyLinear\).*dry run"),
        (nn.Sequential(nn.ReLU()), "no nn.Linear layer"),
        (nn.Linear(3, 2), "nn.Sequential or a list of widths"),
    ],
)
def test_unsupported_models_get_a_clear_error(model: nn.Module, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draw_network(model)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"highlight": (0, 0)}, "column 0 is the input"),
        ({"highlight": (3, 0)}, "columns 1..2"),
        ({"highlight": (1, 4)}, "column 1 has 4 neurons"),
        ({"max_neurons": 2}, "max_neurons"),
    ],
)
def test_bad_options_get_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draw_network([8, 4, 2], **kwargs)


@pytest.mark.parametrize("widths", [[5], [3, 0, 2], [3, 2.5], [True, 2]])
def test_bad_widths_get_a_clear_error(widths: list) -> None:
    with pytest.raises(ValueError, match="positive ints"):
        draw_network(widths)
