"""Plots the lessons share: learning curves, decision boundaries, gradient norms, sizes.

Every function draws on ``ax`` (a new figure when None) and returns the Axes (or the
Figure, for grids), titled and with labelled axes. Colours come from :data:`PALETTE`,
the Okabe–Ito palette, which colour-blind readers can tell apart. Models are left
exactly as they were: same weights, same train/eval mode.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> ax = plot_params_vs_metric([41, 261], [0.97, 0.98], labels=["shallow", "deep"])
>>> ax.get_xlabel()
'parameters (log scale)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter
from torch import Tensor, nn

from course_utils._meta import preserved_mode
from course_utils.style import PALETTE
from course_utils.training import History

__all__ = [
    "PALETTE", "plot_learning_curves", "plot_decision_boundary", "plot_grad_norms",
    "plot_params_vs_metric", "plot_feature_maps", "plot_params_per_layer",
]
# In __all__ only so that old imports keep working; course_utils.style owns it.
_KEPT_FOR_OLD_IMPORTS = ("PALETTE",)

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.0)) -> Axes:
    return plt.subplots(figsize=figsize, layout="constrained")[1] if ax is None else ax


def _as_runs(runs) -> dict[str, list[History]]:
    """History | list[History] | {label: History | list[History]} -> {label: list}."""
    if isinstance(runs, History):
        return {"": [runs]}
    if isinstance(runs, Mapping):
        return {label: [r] if isinstance(r, History) else list(r) for label, r in runs.items()}
    if isinstance(runs, Sequence) and runs and all(isinstance(r, History) for r in runs):
        return {"": list(runs)}
    raise TypeError(
        "runs must be a History, a list of Histories (one per seed) or a dict "
        f"{{label: History or list of Histories}}; got {type(runs).__name__}"
    )


def _stack(histories: list[History], key: str) -> np.ndarray:
    """Runs × epochs array, NaN-padded when runs stopped at different epochs."""
    values = [getattr(h, key) for h in histories]
    out = np.full((len(values), max(map(len, values))), np.nan)
    for row, v in zip(out, values, strict=True):
        row[: len(v)] = v
    return out


def _colour(label: str, index: int, colors: Mapping[str, str] | None) -> str:
    """The colour ``colors`` gives ``label``, else the palette's ``index``-th colour."""
    if colors is not None and label in colors:
        return colors[label]
    return PALETTE[index % len(PALETTE)]


def plot_learning_curves(
    runs, *, metric: str = "loss", ax: Axes | None = None, title: str | None = None,
    events: Sequence[tuple[int, str]] | None = None, colors: Mapping[str, str] | None = None,
) -> Axes:
    """Training (dashed) and validation (solid) loss or accuracy per epoch.

    ``runs``: a History; a list of Histories of one model over several seeds (drawn as
    the mean with a shaded min–max band); or ``{label: History or list}`` for several
    models. ``events`` (default: the Histories' own ``.events``) become labelled
    vertical lines. ``colors`` (``{label: colour}``) keeps one colour per model across
    several figures; labels it does not name take the palette in order.

    >>> h = History(train_loss=[0.7, 0.4], val_loss=[0.8, 0.5])
    >>> plot_learning_curves({"tiny": [h, h]}).get_ylabel()
    'loss'
    >>> ax = plot_learning_curves({"deep": h}, colors={"deep": PALETTE[1]})
    >>> ax.get_lines()[0].get_color() == PALETTE[1]
    True
    """
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    ax, runs, scale = _axes(ax), _as_runs(runs), 100 if metric == "acc" else 1
    for i, (label, histories) in enumerate(runs.items()):
        colour = _colour(label, i, colors)
        seeds = f" ({len(histories)} seeds)" if len(histories) > 1 else ""
        for split, style in (("train", "--"), ("val", "-")):
            values = _stack(histories, f"{split}_{metric}") * scale
            if values.size == 0:
                continue
            epochs = np.arange(1, values.shape[1] + 1)
            name = f"{label}, {split}" if label else split
            ax.plot(epochs, np.nanmean(values, 0), style, color=colour, label=name + seeds)
            if len(histories) > 1:
                ax.fill_between(epochs, np.nanmin(values, 0), np.nanmax(values, 0),
                                color=colour, alpha=0.15, linewidth=0)
    marks = events if events is not None else sorted(
        {e for histories in runs.values() for h in histories for e in h.events})
    for epoch, text in marks:
        ax.axvline(epoch, color="0.4", linestyle=":", linewidth=1)
        ax.annotate(text, (epoch, 1), xycoords=("data", "axes fraction"), rotation=90,
                    va="top", ha="right", fontsize=8, color="0.3")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)" if metric == "acc" else "loss")
    ax.set_title(title or ("Accuracy" if metric == "acc" else "Loss") + " per epoch")
    note = "dashed: training, solid: validation"
    if any(len(h) > 1 for h in runs.values()):
        note += "; band: min–max over seeds"
    ax.legend(title=note, title_fontsize=8, fontsize=8)
    return ax


def _binary_cmap(colors: Sequence[str] = PALETTE[:2]) -> LinearSegmentedColormap:
    return LinearSegmentedColormap.from_list("class01", [colors[0], "#FFFFFF", colors[1]])


def plot_decision_boundary(
    model: nn.Module, X: Tensor, y: Tensor, *, ax: Axes | None = None,
    title: str | None = None, resolution: int = 200, colorbar: bool = True,
    class_colors: Sequence[str] | None = None,
) -> Axes:
    """The model's predicted class over the plane of two features, with the data on top.

    One output column is read as a logit: the shading is the predicted probability of
    class 1 (explained by a colourbar unless ``colorbar=False``) and the black line is
    where it crosses 0.5. Several columns: argmax regions. ``class_colors`` (one colour
    per class; default: the palette in order) keeps the classes apart from colours that
    a lesson gives its models.

    >>> model = nn.Linear(2, 1)
    >>> ax = plot_decision_boundary(model, torch.randn(20, 2), torch.ones(20, 1))
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('feature x₀', 'feature x₁')
    >>> len(ax.figure.axes)  # the plot and its colourbar
    2
    >>> labels = (torch.arange(20) % 2).float().reshape(-1, 1)  # classes 0 and 1
    >>> ax = plot_decision_boundary(model, torch.randn(20, 2), labels,
    ...                             class_colors=["0.45", PALETTE[6]])
    >>> ax.collections[-1].get_facecolor()[0].round(3).tolist()  # class 1's points
    [0.941, 0.894, 0.259, 1.0]
    """
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2 features per point, got X of shape "
                         f"{tuple(X.shape)}")
    ax = _axes(ax, (4.8, 4.2))
    colors = list(class_colors) if class_colors is not None else list(PALETTE)
    X_np, y_np = X.detach().cpu().numpy(), y.detach().cpu().reshape(-1).numpy()
    low, high = X_np.min(0), X_np.max(0)
    pad = 0.1 * (high - low)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid = torch.tensor(np.c_[grid_x.ravel(), grid_y.ravel()], dtype=torch.float32)
    first = next(model.parameters(), None)
    with preserved_mode(model), torch.no_grad():
        model.eval()
        out = model(grid.to(first.device if first is not None else "cpu")).cpu()
    if out.ndim == 1 or out.shape[1] == 1:
        prob = torch.sigmoid(out.reshape(-1)).numpy().reshape(grid_x.shape)
        shading = ax.contourf(grid_x, grid_y, prob, levels=np.linspace(0, 1, 11),
                              cmap=_binary_cmap(colors[:2]), alpha=0.6)
        if colorbar:
            bar = ax.figure.colorbar(shading, ax=ax, ticks=np.linspace(0, 1, 6), shrink=0.85)
            bar.set_label("predicted probability of class 1")
        ax.contour(grid_x, grid_y, prob, levels=[0.5], colors="black", linewidths=1.5)
    else:
        classes = out.argmax(1).numpy().reshape(grid_x.shape)
        n = out.shape[1]
        ax.contourf(grid_x, grid_y, classes, levels=np.arange(n + 1) - 0.5,
                    cmap=ListedColormap([colors[i % len(colors)] for i in range(n)]),
                    alpha=0.3)
    for i, cls in enumerate(np.unique(y_np)):
        pts = X_np[y_np == cls]
        ax.scatter(pts[:, 0], pts[:, 1], s=10, color=colors[i % len(colors)],
                   marker=_MARKERS[i % len(_MARKERS)], edgecolors="black", linewidths=0.3,
                   label=f"class {cls:g}")
    ax.set(xlabel="feature x₀", ylabel="feature x₁", title=title or "Decision boundary")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def _norm_series(norms: Mapping) -> dict[str, tuple[list[str], list[float]]]:
    """{layer: float} (one model) or {label: [floats] | {layer: float}} (several)."""
    if all(isinstance(v, (int, float)) for v in norms.values()):
        return {"": (list(norms), [float(v) for v in norms.values()])}
    series = {}
    for label, values in norms.items():
        if isinstance(values, Mapping):
            series[label] = (list(values), [float(v) for v in values.values()])
        else:
            series[label] = ([str(i) for i in range(1, len(values) + 1)], list(map(float, values)))
    return series


def plot_grad_norms(
    norms: Mapping[str, Sequence[float] | Mapping[str, float] | float], *,
    ax: Axes | None = None, log: bool = True, title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> Axes:
    """Weight-gradient norm per layer, input side on the left.

    ``norms`` is one model's ``{layer: norm}`` (as from ``grad_norms_per_layer``) or,
    to compare models, ``{label: [norm per layer]}`` / ``{label: {layer: norm}}``.
    ``colors`` (``{label: colour}``) fixes a model's colour, as in
    :func:`plot_learning_curves`.

    >>> ax = plot_grad_norms({"sigmoid": [1e-6, 1e-4, 1e-2], "relu": [0.1, 0.1, 0.2]})
    >>> ax.get_yscale(), len(ax.get_lines())
    ('log', 2)
    """
    ax, series = _axes(ax), _norm_series(norms)
    for i, (label, (_, values)) in enumerate(series.items()):
        ax.plot(range(1, len(values) + 1), values, marker=_MARKERS[i % len(_MARKERS)],
                color=_colour(label, i, colors), label=label or None)
    longest = max(series.values(), key=lambda s: len(s[0]))[0]
    ax.set_xticks(range(1, len(longest) + 1), longest if len(series) == 1 else None)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer (1 = next to the input)")
    ax.set_ylabel("weight-gradient norm" + (" (log scale)" if log else ""))
    ax.set_title(title or "Gradient norm per layer")
    if len(series) > 1:
        ax.legend(fontsize=8)
    return ax


def plot_params_vs_metric(
    params: Sequence[int], metric: Sequence[float], *, labels: Sequence[str] | None = None,
    ax: Axes | None = None, logx: bool = True, ylabel: str = "validation accuracy",
    title: str | None = None,
) -> Axes:
    """Scatter of a metric against parameter count, each point annotated with its label."""
    if len(params) != len(metric) or (labels is not None and len(labels) != len(params)):
        raise ValueError("params, metric (and labels) must have the same length")
    ax = _axes(ax)
    ax.scatter(params, metric, color=PALETTE[0], zorder=3)
    for x, y, text in zip(params, metric, labels or [""] * len(params), strict=True):
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("parameters" + (" (log scale)" if logx else ""))
    ax.set(ylabel=ylabel, title=title or f"{ylabel.capitalize()} against model size")
    ax.grid(alpha=0.3)
    return ax


def _find_layer(model: nn.Module, layer: str | nn.Module | None) -> tuple[str, nn.Module]:
    modules = dict(model.named_modules())
    if isinstance(layer, str):
        if layer not in modules:
            raise KeyError(f"no layer named {layer!r}; layers: {', '.join(n for n in modules if n)}")
        return layer, modules[layer]
    if isinstance(layer, nn.Module):
        return next((n for n, m in modules.items() if m is layer), type(layer).__name__), layer
    convs = [(n, m) for n, m in modules.items() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no Conv2d layer; pass layer= to choose one")
    return convs[0]


def plot_feature_maps(
    layer_or_model: nn.Module, image: Tensor, *, layer: str | nn.Module | None = None,
    max_maps: int = 16, shared_scale: bool = False,
) -> Figure:
    """Grid of a layer's output channels for one image (``C×H×W`` or ``1×C×H×W``).

    Pass a conv layer itself, or a model and ``layer`` (its name or the module; default:
    the model's first ``Conv2d``). The maps are the layer's own output: for a ``Conv2d``
    that is before its activation; pass the ReLU's name to see what survives it.
    ``shared_scale=True`` draws every map on one colour scale, with a colourbar, so that
    their values can be compared; by default each map is scaled on its own.

    >>> conv = nn.Conv2d(1, 4, 3, padding=1)
    >>> fig = plot_feature_maps(conv, torch.randn(1, 8, 8))
    >>> len(fig.axes), fig.get_suptitle()[:12]
    (4, 'Feature maps')
    """
    batch = image.unsqueeze(0) if image.ndim == 3 else image
    if batch.ndim != 4 or len(batch) != 1:
        raise ValueError(f"image must be C×H×W or 1×C×H×W, got shape {tuple(image.shape)}")
    name, target = _find_layer(layer_or_model, layer)
    captured: list[Tensor] = []
    hook = target.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    try:
        with preserved_mode(layer_or_model), torch.no_grad():
            layer_or_model.eval()
            first = next(layer_or_model.parameters(), None)
            layer_or_model(batch.to(first.device if first is not None else "cpu"))
    finally:
        hook.remove()
    maps = captured[0][0].cpu()
    if maps.ndim != 3:
        raise ValueError(f"layer {name!r} outputs shape {tuple(captured[0].shape)}, not "
                         "channel maps; choose a convolution or pooling layer")
    count = min(max_maps, len(maps))
    cols = min(count, 8)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.5 * rows + 0.6),
                             layout="constrained", squeeze=False)
    limits = {}
    if shared_scale:
        limits = {"vmin": float(maps[:count].min()), "vmax": float(maps[:count].max())}
    image_plot = None
    for i, ax in enumerate(axes.flat):
        if i < count:
            image_plot = ax.imshow(maps[i].numpy(), cmap="viridis", **limits)
            ax.set_title(f"channel {i}", fontsize=8)
            ax.set(xlabel="", ylabel="", xticks=[], yticks=[])
        else:
            ax.remove()
    if shared_scale and image_plot is not None:
        fig.colorbar(image_plot, ax=list(axes.flat)[:count],
                     label="activation value", shrink=0.9)
    described = f"{name!r} ({type(target).__name__})" if name else type(target).__name__
    fig.suptitle(f"Feature maps of {described}: {count} of {len(maps)} channels")
    fig.supxlabel("pixel column", fontsize=9)
    fig.supylabel("pixel row", fontsize=9)
    return fig


def plot_params_per_layer(
    model: nn.Module, *, ax: Axes | None = None, log: bool | None = None,
    title: str | None = None,
) -> Axes:
    """Horizontal bars: parameters held by each layer (log scale when sizes differ > 100×).

    >>> model = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 1))
    >>> ax = plot_params_per_layer(model)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['0 (Linear)', '2 (Linear)']
    """
    rows = [(f"{name} ({type(m).__name__})", sum(p.numel() for p in m.parameters(recurse=False)))
            for name, m in model.named_modules()]
    rows = [(label, n) for label, n in rows if n > 0]
    if not rows:
        raise ValueError("the model has no parameters to plot")
    labels, counts = zip(*rows, strict=True)
    ax = _axes(ax, (6.4, 0.9 + 0.35 * len(rows)))
    positions = np.arange(len(rows))
    ax.barh(positions, counts, color=PALETTE[0])
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()  # first layer on top
    for y, n in zip(positions, counts, strict=True):
        ax.annotate(f"{n:,}", (n, y), xytext=(3, 0), textcoords="offset points", va="center",
                    fontsize=8)
    if log if log is not None else max(counts) > 100 * min(counts):
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
    else:
        ax.set_xlabel("parameters")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, not 200000
    ax.set_ylabel("layer")
    ax.set_title(title or f"Parameters per layer ({sum(counts):,} in total)")
    return ax
