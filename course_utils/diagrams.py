"""Pictures of small fully connected networks: neurons as circles, weights as lines.

``draw_network([8, 4, 2], highlight=(1, 0))`` draws an 8→4→2 network and picks out one
neuron's incoming weights and its bias: the picture behind "a neuron has N + 1 parameters".
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.patches import Circle
from torch import nn

from course_utils.style import PALETTE

__all__ = ["draw_network", "network_widths"]

_BLUE, _GREEN, _ORANGE = PALETTE[0], PALETTE[2], PALETTE[4]  # Okabe–Ito, colour-blind safe
_GREY = "#999999"  # the many weights that are not highlighted
_X_STEP, _RADIUS = 3.0, 0.32


def network_widths(model_or_widths: nn.Sequential | Sequence[int]) -> list[int]:
    """The widths of every column (input, hidden…, output) of a fully connected network.

    >>> network_widths(nn.Sequential(nn.Linear(10, 18), nn.ReLU(), nn.Linear(18, 5)))
    [10, 18, 5]
    >>> network_widths([8, 4, 2])
    [8, 4, 2]
    """
    if isinstance(model_or_widths, nn.Module):
        return _widths_of_sequential(model_or_widths)
    widths = list(model_or_widths)
    if len(widths) < 2 or not all(_is_positive_int(w) for w in widths):
        raise ValueError(
            f"widths must list at least two positive ints (input, …, output), got {widths!r}"
        )
    return widths


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_activation(layer: nn.Module) -> bool:
    """ReLU, Tanh, GELU… (torch.nn.modules.activation), Dropout or Identity: the width stays."""
    if isinstance(layer, nn.MultiheadAttention):  # defined in that torch module too
        return False
    in_activations = type(layer).__module__ == nn.modules.activation.__name__
    return in_activations or isinstance(layer, (nn.Identity, nn.Dropout))


def _widths_of_sequential(model: nn.Module) -> list[int]:
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"draw_network takes an nn.Sequential or a list of widths, got {type(model).__name__}"
        )
    widths: list[int] = []
    for name, layer in model.named_children():
        kind = type(layer).__name__
        if isinstance(layer, nn.Linear):
            if isinstance(layer, nn.modules.lazy.LazyModuleMixin) and layer.has_uninitialized_params():
                raise ValueError(f"layer '{name}' ({kind}) has no in_features before a dry run")
            if not widths:
                widths.append(layer.in_features)
            elif layer.in_features != widths[-1]:
                raise ValueError(
                    f"layer '{name}' (Linear, in_features={layer.in_features}) follows a layer "
                    f"with {widths[-1]} outputs: the widths do not chain"
                )
            widths.append(layer.out_features)
        elif not _is_activation(layer):
            raise ValueError(
                f"draw_network draws fully connected networks: layer '{name}' ({kind}) is not "
                "supported. Use nn.Linear layers and activations only, or pass widths "
                "such as [10, 18, 20, 5]."
            )
    if not widths:
        raise ValueError("the model has no nn.Linear layer: there is no network to draw")
    return widths


def _slots(width: int, max_neurons: int, keep: int | None) -> list[int | None]:
    """Neuron indices to draw from top to bottom; ``None`` marks an elided run ("⋮")."""
    if width <= max_neurons:
        return list(range(width))
    half = (max_neurons - 1) // 2
    head, tail = list(range(half)), list(range(width - half, width))
    if keep is None or keep in head or keep in tail:
        return [*head, None, *tail]
    return [*head[:-1], None, keep, None, *tail[1:]]


def draw_network(
    model_or_widths: nn.Sequential | Sequence[int],
    *,
    highlight: tuple[int, int] | None = None,
    max_neurons: int = 10,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw a fully connected network; return the matplotlib Axes.

    ``highlight=(column, neuron)`` picks a neuron (column 0 is the input, 1 the first
    hidden layer, …) and draws its incoming weights and its bias in colour. Columns wider
    than ``max_neurons`` show their first and last neurons around a "⋮".

    >>> ax = draw_network([3, 4, 2], highlight=(1, 0))
    >>> sum(p.get_gid() == "neuron" for p in ax.patches)
    9
    >>> plt.close(ax.figure)
    """
    widths = network_widths(model_or_widths)
    if not _is_positive_int(max_neurons) or max_neurons < 3:
        raise ValueError(f"max_neurons must be an int >= 3, got {max_neurons!r}")
    _check_highlight(highlight, widths)
    keep = dict([highlight]) if highlight else {}
    columns = [_slots(w, max_neurons, keep.get(i)) for i, w in enumerate(widths)]
    positions = [_column_positions(slots, i) for i, slots in enumerate(columns)]
    tallest = max(len(slots) for slots in columns)
    if ax is None:
        size = (0.5 * _X_STEP * len(widths) + 2.5, 0.45 * tallest + 2.2)
        _, ax = plt.subplots(figsize=size)

    background = [
        [a, b] for left, right in zip(positions, positions[1:])
        for a in left.values() for b in right.values()
    ]
    ax.add_collection(LineCollection(background, colors=_GREY, linewidths=0.6, alpha=0.5,
                                     zorder=1, gid="weights"))
    for i, (slots, where) in enumerate(zip(columns, positions)):
        _draw_column(ax, i, len(widths), widths[i], slots, where, label_y=-tallest / 2 - 0.4)
    if highlight is not None:
        _draw_highlight(ax, highlight, widths, positions)

    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.margins(0.08, 0.12)
    ax.axis("off")
    if title is None:
        count = _param_count(model_or_widths, widths)
        title = f"{' → '.join(map(str, widths))} network: {count:,} parameters"
    ax.set_title(title)
    return ax


def _check_highlight(highlight: tuple[int, int] | None, widths: list[int]) -> None:
    if highlight is None:
        return
    column, neuron = highlight
    if not 1 <= column < len(widths):
        raise ValueError(
            f"highlight column {column} is out of range: column 0 is the input (inputs have "
            f"no weights), neurons with weights are in columns 1..{len(widths) - 1}"
        )
    if not 0 <= neuron < widths[column]:
        raise ValueError(
            f"highlight neuron {neuron} is out of range: column {column} has "
            f"{widths[column]} neurons (0..{widths[column] - 1})"
        )


def _column_positions(slots: list[int | None], column: int) -> dict[int, tuple[float, float]]:
    top = (len(slots) - 1) / 2
    return {n: (column * _X_STEP, top - row) for row, n in enumerate(slots) if n is not None}


def _column_name(column: int, n_columns: int) -> str:
    if column == 0:
        return "input"
    return "output" if column == n_columns - 1 else f"hidden {column}"


def _draw_column(ax: Axes, column: int, n_columns: int, width: int, slots: list[int | None],
                 where: dict[int, tuple[float, float]], label_y: float) -> None:
    colour = _GREEN if column == 0 else _BLUE
    for x, y in where.values():
        ax.add_patch(Circle((x, y), _RADIUS, facecolor=colour, edgecolor="black",
                            linewidth=0.8, zorder=3, gid="neuron"))
    top = (len(slots) - 1) / 2
    for row, n in enumerate(slots):
        if n is None:
            ax.text(column * _X_STEP, top - row, "⋮", ha="center", va="center", fontsize=16,
                    gid="elision")
    if column == 0:  # the input is features, not neurons
        units = "feature" if width == 1 else "features"
    else:
        units = "unit" if width == 1 else "units"
    ax.text(column * _X_STEP, label_y, f"{_column_name(column, n_columns)}\n{width:,} {units}",
            ha="center", va="top", fontsize=9, gid="column-label")


def _draw_highlight(ax: Axes, highlight: tuple[int, int], widths: list[int],
                    positions: list[dict[int, tuple[float, float]]]) -> None:
    column, neuron = highlight
    x, y = positions[column][neuron]
    sources = positions[column - 1]
    for sx, sy in sources.values():
        ax.plot([sx, x], [sy, y], color=_ORANGE, linewidth=2.2, zorder=2, gid="highlight")
    top = max(py for column_xy in positions for _, py in column_xy.values())
    bias_xy = ((column - 0.5) * _X_STEP, top + 1.2)
    ax.plot([bias_xy[0], x], [bias_xy[1], y], color=_ORANGE, linewidth=2.2, linestyle="--",
            zorder=2, gid="highlight")
    ax.add_patch(Circle(bias_xy, _RADIUS, facecolor="white", edgecolor=_ORANGE,
                        linewidth=2, zorder=3, gid="bias"))
    ax.text(*bias_xy, "b", ha="center", va="center", fontsize=10, zorder=4)
    ax.add_patch(Circle((x, y), _RADIUS, facecolor=_ORANGE, edgecolor="black", linewidth=1.2,
                        zorder=4, gid="highlighted-neuron"))
    n_in = widths[column - 1]
    hidden = n_in - len(sources)
    more = f" ({hidden:,} not drawn)" if hidden else ""
    ax.text(bias_xy[0] + 0.6, bias_xy[1], f"{n_in:,} weights{more}\n+ 1 bias = {n_in + 1:,} "
            "parameters", ha="left", va="center", fontsize=9, color="black", zorder=5, gid="highlight-label",
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": _ORANGE})


def _param_count(model_or_widths: nn.Sequential | Sequence[int], widths: list[int]) -> int:
    if isinstance(model_or_widths, nn.Module):
        return sum(p.numel() for p in model_or_widths.parameters())
    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))
