"""A parameter explorer: sliders for depth and widths, a live parameter count and memory.

``explorer_summary`` computes everything the widget shows (no widget needed, easy to
test); ``param_explorer`` wraps it in ipywidgets sliders. Models are built on the
``meta`` device, so even billions of parameters are counted instantly.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course_utils.inspection import count_params
from course_utils.memory import param_bytes, training_bytes
from course_utils.style import format_bytes

__all__ = ["param_explorer", "explorer_summary", "ExplorerSummary", "format_bytes"]
# In __all__ only so that old imports keep working; course_utils.style owns it.
_KEPT_FOR_OLD_IMPORTS = ("format_bytes",)

ACTIVATIONS = ("ReLU", "Tanh", "Sigmoid", "GELU", "LeakyReLU", "SiLU")
# slider name -> (description, smallest, largest)
_SLIDERS = {
    "input_size": ("Inputs", 1, 1024),
    "hidden_layers": ("Hidden layers", 0, 10),
    "hidden_width": ("Hidden width", 1, 4096),
    "output_size": ("Outputs", 1, 1000),
}


@dataclass(frozen=True)
class ExplorerSummary:
    """What the explorer shows for one setting of its sliders."""

    widths: tuple[int, ...]
    activation: str
    model_repr: str
    layers: tuple[tuple[str, str, int], ...]  # (name, layer, parameters) per Linear layer
    total_params: int
    weight_bytes: int  # fp32 weights
    adam_bytes: int  # weights + gradients + Adam's two moments

    def __str__(self) -> str:
        arrows = " → ".join(map(str, self.widths))
        lines = [f"{arrows} ({self.activation}): {self.total_params:,} parameters"]
        lines += [f"  {name:>3}  {layer:<20} {count:>14,}" for name, layer, count in self.layers]
        lines.append(f"  fp32 weights: {format_bytes(self.weight_bytes)}; "
                     f"to train with Adam: {format_bytes(self.adam_bytes)}")
        return "\n".join(lines)

    def to_html(self) -> str:
        """The widget's view; the total sits in ``<span class="param-total">`` as plain digits."""
        rows = "".join(
            f"<tr><td>{name}</td><td><code>{html.escape(layer)}</code></td>"
            f"<td style='text-align:right'>{count:,}</td></tr>"
            for name, layer, count in self.layers
        )
        return (
            f"<pre>{html.escape(self.model_repr)}</pre>"
            "<table><tr><th>name</th><th>layer</th><th>parameters</th></tr>"
            f"{rows}</table>"
            f"<p><b>Total: <span class='param-total'>{self.total_params}</span></b> parameters"
            f"{f' ({self.total_params:,})' if self.total_params >= 10_000 else ''}<br>"
            f"fp32 weights: <span class='weight-bytes'>{format_bytes(self.weight_bytes)}</span>"
            f"; to train with Adam (≈4×): "
            f"<span class='adam-bytes'>{format_bytes(self.adam_bytes)}</span></p>"
        )


def explorer_summary(
    input_size: int = 10,
    hidden_layers: int = 2,
    hidden_width: int | Sequence[int] = 16,
    output_size: int = 5,
    *,
    activation: str = "ReLU",
) -> ExplorerSummary:
    """Count the parameters and memory of an MLP; ``hidden_width`` may list one width per layer.

    >>> explorer_summary(10, 2, [18, 20], 5).total_params
    683
    >>> s = explorer_summary(10, 1, 20, 5)
    >>> s.widths, s.total_params, s.weight_bytes, s.adam_bytes
    ((10, 20, 5), 325, 1300, 5200)
    """
    widths = _widths(input_size, hidden_layers, hidden_width, output_size)
    model = _mlp(widths, activation, device=torch.device("meta"))
    layers = tuple(
        (name, f"Linear({layer.in_features}, {layer.out_features})", count_params(layer))
        for name, layer in model.named_children() if isinstance(layer, nn.Linear)
    )
    return ExplorerSummary(
        widths=tuple(widths), activation=activation, model_repr=repr(model), layers=layers,
        total_params=count_params(model), weight_bytes=param_bytes(model),
        adam_bytes=training_bytes(model, optimizer="adam"),
    )


def _widths(input_size: int, hidden_layers: int, hidden_width: int | Sequence[int],
            output_size: int) -> list[int]:
    if not isinstance(hidden_layers, int) or isinstance(hidden_layers, bool) or hidden_layers < 0:
        raise ValueError(f"hidden_layers must be an int >= 0, got {hidden_layers!r}")
    hidden = [hidden_width] * hidden_layers if isinstance(hidden_width, int) else list(hidden_width)
    if len(hidden) != hidden_layers:
        raise ValueError(f"hidden_width lists {len(hidden)} widths but hidden_layers={hidden_layers}")
    widths = [input_size, *hidden, output_size]
    if any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
        raise ValueError(f"every size must be a positive int, got widths {widths}")
    return widths


def _mlp(widths: list[int], activation: str, device: torch.device) -> nn.Sequential:
    """Linear layers with the given widths and an activation between each pair."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    with device:
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), getattr(nn, activation)()]
    return nn.Sequential(*layers[:-1])  # no activation after the output layer


def _in_kernel() -> bool:
    """True inside a Jupyter kernel, where a widget can be displayed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def param_explorer(
    *, input_size: int = 10, hidden_layers: int = 2, hidden_width: int = 16,
    output_size: int = 5, activation: str = "ReLU",
) -> Any:
    """Sliders for an MLP's sizes with its live parameter count and memory (a ``VBox``).

    Without widget support (no ipywidgets, or not inside a Jupyter kernel) it prints
    the same numbers as text and returns None. In a notebook, viewers that cannot
    render widgets show that text too.

    >>> param_explorer(hidden_layers=1, hidden_width=20)  # outside Jupyter: text
    10 → 20 → 5 (ReLU): 325 parameters
        0  Linear(10, 20)                  220
        2  Linear(20, 5)                   105
      fp32 weights: 1.3 kB; to train with Adam: 5.2 kB
    """
    settings = {"input_size": input_size, "hidden_layers": hidden_layers,
                "hidden_width": hidden_width, "output_size": output_size}
    summary = explorer_summary(**settings, activation=activation)
    try:
        import ipywidgets
    except ImportError:
        print(summary)
        return None
    if not _in_kernel():
        print(summary)
        return None
    return _build_widget(ipywidgets, settings, activation)


def _build_widget(widgets: Any, settings: dict[str, int], activation: str) -> Any:
    style = {"description_width": "7em"}
    sliders = {
        key: widgets.IntSlider(value=settings[key], min=low, max=max(high, settings[key]),
                               description=text, style=style, continuous_update=True,
                               layout=widgets.Layout(width="32em"))
        for key, (text, low, high) in _SLIDERS.items()
    }
    choices = ACTIVATIONS if activation in ACTIVATIONS else (activation, *ACTIVATIONS)
    dropdown = widgets.Dropdown(options=choices, value=activation, description="Activation",
                                style=style)
    view = widgets.HTML()
    box = _explorer_class(widgets)([*sliders.values(), dropdown, view])

    def update(_change: object = None) -> None:
        values = {key: slider.value for key, slider in sliders.items()}
        box.summary = explorer_summary(**values, activation=dropdown.value)
        view.value = box.summary.to_html()

    for control in (*sliders.values(), dropdown):
        control.observe(update, names="value")
    update()
    return box


@functools.cache
def _explorer_class(widgets: Any) -> type:
    """A VBox whose plain-text form is the current summary (for viewers without widgets)."""

    class ParamExplorer(widgets.VBox):
        summary: ExplorerSummary

        def _repr_mimebundle_(self, **kwargs: Any) -> dict:
            bundle = super()._repr_mimebundle_(**kwargs)
            bundle["text/plain"] = str(self.summary)
            return bundle

    return ParamExplorer
