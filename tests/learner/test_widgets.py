"""The parameter explorer: its numbers match real models, sliders update it, and it degrades."""

from __future__ import annotations

import re
import sys

import ipywidgets
import pytest
import torch
from torch import nn

from course_utils import widgets
from course_utils.inspection import count_params
from course_utils.memory import param_bytes, training_bytes
from course_utils.widgets import explorer_summary, format_bytes, param_explorer


def _real_mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@pytest.mark.parametrize(
    ("args", "widths"),
    [
        ((10, 2, [18, 20], 5), [10, 18, 20, 5]),
        ((8, 1, 4, 2), [8, 4, 2]),
        ((10, 1, 20, 5), [10, 20, 5]),
        ((3, 0, 7, 4), [3, 4]),
        ((64, 3, 32, 10), [64, 32, 32, 32, 10]),
    ],
)
def test_summary_matches_a_real_model(args: tuple, widths: list[int]) -> None:
    model = _real_mlp(widths)
    summary = explorer_summary(*args)
    assert summary.widths == tuple(widths)
    assert summary.total_params == count_params(model)
    assert summary.weight_bytes == param_bytes(model)
    assert summary.adam_bytes == training_bytes(model, "adam") == 4 * param_bytes(model)
    assert [count for _, _, count in summary.layers] == [
        count_params(m) for m in model if isinstance(m, nn.Linear)
    ]
    assert summary.model_repr == repr(model)


def test_the_683_stack_in_text_and_html() -> None:
    summary = explorer_summary(10, 2, [18, 20], 5)
    assert [count for _, _, count in summary.layers] == [198, 380, 105]
    assert "683 parameters" in str(summary)
    assert "<span class='param-total'>683</span>" in summary.to_html()


def test_huge_models_are_counted_without_allocating() -> None:
    summary = explorer_summary(1024, 10, 4096, 1000)  # ~160 M parameters, 0.6 GB in fp32
    expected = 1025 * 4096 + 9 * 4097 * 4096 + 4097 * 1000
    assert summary.total_params == expected
    assert summary.weight_bytes == 4 * expected


def test_activation_is_in_the_repr_and_unknown_ones_are_refused() -> None:
    assert "Tanh()" in explorer_summary(activation="Tanh").model_repr
    with pytest.raises(ValueError, match="unknown activation 'Relu'"):
        explorer_summary(activation="Relu")


@pytest.mark.parametrize(
    "args",
    [(0, 1, 4, 2), (4, -1, 4, 2), (4, 2.0, 4, 2), (4, 2, [3], 2), (4, 1, 4, 2.0), (4, 1, True, 2)],
)
def test_bad_sizes_are_refused(args: tuple) -> None:
    with pytest.raises(ValueError):
        explorer_summary(*args)


def test_format_bytes() -> None:
    assert format_bytes(999) == "999 B"
    assert format_bytes(1000) == "1.0 kB"
    assert format_bytes(6_000_000_000_000) == "6.0 TB"


def _find(box, kind: str, description: str):
    return next(w for w in box.children if type(w).__name__ == kind
                and w.description == description)


def _total(box) -> int:
    html_view = next(w for w in box.children if type(w).__name__ == "HTML")
    return int(re.search(r"class='param-total'>(\d+)<", html_view.value).group(1))


@pytest.fixture
def in_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(widgets, "_in_kernel", lambda: True)


@pytest.mark.usefixtures("in_kernel")
def test_sliders_update_the_html() -> None:
    box = param_explorer(input_size=10, hidden_layers=1, hidden_width=20, output_size=5)
    assert isinstance(box, ipywidgets.VBox)
    assert _total(box) == 325
    _find(box, "IntSlider", "Hidden width").value = 18
    assert _total(box) == 18 * 11 + 5 * 19
    _find(box, "IntSlider", "Hidden layers").value = 2
    assert _total(box) == count_params(_real_mlp([10, 18, 18, 5]))
    _find(box, "IntSlider", "Inputs").value = 784
    _find(box, "IntSlider", "Outputs").value = 10
    assert _total(box) == count_params(_real_mlp([784, 18, 18, 10]))
    _find(box, "Dropdown", "Activation").value = "GELU"
    assert "GELU(" in box.summary.model_repr


@pytest.mark.usefixtures("in_kernel")
def test_plain_text_form_of_the_widget_is_the_summary() -> None:
    box = param_explorer(hidden_width=20, hidden_layers=1)
    bundle = box._repr_mimebundle_()
    assert bundle["text/plain"] == str(explorer_summary(10, 1, 20, 5))
    assert "application/vnd.jupyter.widget-view+json" in bundle


@pytest.mark.usefixtures("in_kernel")
def test_defaults_beyond_the_slider_range_are_kept() -> None:
    box = param_explorer(hidden_width=10_000)
    assert _find(box, "IntSlider", "Hidden width").value == 10_000


def test_without_ipywidgets_it_prints_the_summary(monkeypatch, capsys) -> None:
    monkeypatch.setattr(widgets, "_in_kernel", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` fail
    assert param_explorer(hidden_layers=2, hidden_width=16) is None
    out = capsys.readouterr().out
    assert out.strip() == str(explorer_summary(10, 2, 16, 5))
    assert "533 parameters" in out


def test_outside_a_kernel_it_prints_the_summary(capsys) -> None:
    assert not widgets._in_kernel()  # pytest is not a Jupyter kernel
    assert param_explorer() is None
    assert "parameters" in capsys.readouterr().out


def test_meta_device_is_left_as_it_was() -> None:
    explorer_summary(10, 2, 16, 5)
    assert torch.empty(1).device.type == "cpu"
