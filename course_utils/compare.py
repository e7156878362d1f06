"""Compare models side by side: size, compute, speed and, when trained, accuracy.

One call gives a table with one row per model::

    table = compare_models({"narrow": narrow, "wide": wide}, (1, 8, 8), histories=runs)
    table                                   # a readable table in Jupyter (HTML) or print()
    table.select("params", "macs")          # only the columns that never change between runs

Parameters and MACs are exact and machine-independent; times are medians of a few runs on
this machine and change from run to run, so notebooks compare them only in prose.
"""

from __future__ import annotations

import html
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from course_utils._meta import preserved_mode
from course_utils.inspection import ForwardPassError, count_params, flops

__all__ = ["compare_models", "ComparisonTable", "ComparisonRow", "median_forward_ms"]


@dataclass(frozen=True)
class ComparisonRow:
    """What ``compare_models`` measured for one model (``None``: not measured)."""

    name: str
    params: int
    largest_layer: str  # dotted name of the module holding the most parameters ("": the model)
    largest_layer_type: str
    largest_share: float  # that layer's parameters / all parameters, between 0 and 1
    macs: int  # multiply-accumulates for ONE example
    flops: int  # = 2 * macs
    ms_per_batch: float | None = None  # median forward time of one batch, milliseconds
    ms_per_image: float | None = None  # ms_per_batch / batch_size (latency per example)
    val_acc_mean: float | None = None  # final validation accuracy, mean over runs
    val_acc_std: float | None = None  # sample standard deviation over runs (None for 1 run)
    runs: int | None = None
    train_seconds: float | None = None  # mean training time of a run


def _fmt_acc(row: ComparisonRow) -> str:
    if row.val_acc_std is None:
        return f"{row.val_acc_mean:.3f}"
    return f"{row.val_acc_mean:.3f} ± {row.val_acc_std:.3f}"


def _fmt_layer(row: ComparisonRow) -> str:
    if not row.largest_layer:
        return row.largest_layer_type
    return f"{row.largest_layer} ({row.largest_layer_type})"


_LEFT_ALIGNED = {"model", "largest layer"}
# column key -> (header, formatter, field that tells whether the column was measured)
_COLUMNS: dict[str, tuple[str, Any, str]] = {
    "params": ("params", lambda r: f"{r.params:,}", "params"),
    "largest_layer": ("largest layer", _fmt_layer, "largest_layer"),
    "largest_share": ("share", lambda r: f"{r.largest_share:.1%}", "largest_share"),
    "macs": ("MACs", lambda r: f"{r.macs:,}", "macs"),
    "flops": ("FLOPs", lambda r: f"{r.flops:,}", "flops"),
    "ms_per_batch": ("ms/batch", lambda r: f"{r.ms_per_batch:.2f}", "ms_per_batch"),
    "ms_per_image": ("ms/image", lambda r: f"{r.ms_per_image:.4f}", "ms_per_image"),
    "val_acc": ("val acc", _fmt_acc, "val_acc_mean"),
    "runs": ("runs", lambda r: str(r.runs), "runs"),
    "train_seconds": ("train s", lambda r: f"{r.train_seconds:.1f}", "train_seconds"),
}
SIZE_COLUMNS = ("params", "largest_layer", "largest_share", "macs", "flops")


class ComparisonTable:
    """The rows of a comparison, printable (``str``), shown as HTML in Jupyter.

    ``columns`` picks what is shown; by default every column that was measured.
    """

    def __init__(self, rows: Sequence[ComparisonRow], columns: Sequence[str] | None = None):
        self.rows = list(rows)
        measured = [
            key for key, (_, _, field) in _COLUMNS.items()
            if any(getattr(row, field) is not None for row in self.rows)
        ]
        self.columns = list(measured if columns is None else columns)
        unknown = [c for c in self.columns if c not in _COLUMNS]
        if unknown:
            raise ValueError(f"unknown column(s) {unknown}; choose from {list(_COLUMNS)}")

    def __getitem__(self, name: str) -> ComparisonRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no model named {name!r}; the table has {[r.name for r in self.rows]}")

    def select(self, *columns: str) -> ComparisonTable:
        """The same rows with only ``columns`` (default: the machine-independent ones)."""
        return ComparisonTable(self.rows, columns or SIZE_COLUMNS)

    def _cells(self, columns: Sequence[str]) -> tuple[list[str], list[list[str]]]:
        headers = ["model"] + [_COLUMNS[c][0] for c in columns]
        body = []
        for row in self.rows:
            cells = [row.name]
            for column in columns:
                _, fmt, field = _COLUMNS[column]
                cells.append("–" if getattr(row, field) is None else fmt(row))
            body.append(cells)
        return headers, body

    def to_string(self, columns: Sequence[str] | None = None) -> str:
        """Aligned plain-text table: names left, numbers right."""
        headers, body = self._cells(self.columns if columns is None else columns)
        widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]

        def line(cells: list[str]) -> str:
            return "  ".join(
                cell.ljust(width) if header in _LEFT_ALIGNED else cell.rjust(width)
                for cell, width, header in zip(cells, widths, headers, strict=True)
            ).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(headers), rule, *(line(cells) for cells in body)])

    def __str__(self) -> str:
        return self.to_string()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        headers, body = self._cells(self.columns)
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        align = ["left" if h in _LEFT_ALIGNED else "right" for h in headers]
        rows = "".join(
            "<tr>" + "".join(
                f'<td style="text-align:{a}">{html.escape(c)}</td>'
                for c, a in zip(cells, align, strict=True)
            ) + "</tr>"
            for cells in body
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{model name: {field: value}}``, e.g. to build a pandas DataFrame."""
        return {row.name: asdict(row) for row in self.rows}


def _largest_layer(model: nn.Module) -> tuple[str, str, int]:
    """(name, type, parameter count) of the module that directly holds the most parameters."""
    best = ("", type(model).__name__, 0)
    for name, module in model.named_modules():
        count = sum(p.numel() for p in module.parameters(recurse=False))
        if count > best[2]:
            best = (name, type(module).__name__, count)
    return best


def _checked_device(name: str, model: nn.Module, device: torch.device | str | None) -> torch.device:
    """The device ``model`` is on; a ValueError if ``device`` asks for another one."""
    tensors = [*model.parameters(), *model.buffers()]
    own = tensors[0].device if tensors else torch.device("cpu")
    if device is not None and torch.device(device) != own:
        raise ValueError(
            f"model {name!r} is on {own} but device={str(device)!r} was asked; compare_models "
            f"never moves a model: call model.to({str(device)!r}) first or leave device=None"
        )
    return own


def median_forward_ms(
    model: nn.Module, x: torch.Tensor, *, repeats: int = 50, warmup: int = 10
) -> float:
    """Median wall time of ``model(x)`` in milliseconds, after ``warmup`` untimed calls
    (synchronising CUDA, so GPU times are real). Any callable module or layer works.

    >>> ms = median_forward_ms(nn.Linear(8, 4), torch.zeros(2, 8), repeats=5, warmup=1)
    >>> ms > 0
    True
    """
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _history_stats(name: str, runs: Any) -> dict[str, Any]:
    runs = list(runs) if isinstance(runs, (list, tuple)) else [runs]
    finals = []
    for i, history in enumerate(runs):
        if not getattr(history, "val_acc", None):
            raise ValueError(
                f"history {i} of {name!r} has no validation accuracy; "
                "train with fit(model, train_loader, val_loader, ...) to record it"
            )
        finals.append(float(history.val_acc[-1]))
    return {
        "val_acc_mean": statistics.fmean(finals),
        "val_acc_std": statistics.stdev(finals) if len(finals) > 1 else None,
        "runs": len(finals),
        "train_seconds": statistics.fmean(float(h.seconds) for h in runs),
    }


def _measure(name: str, model: nn.Module, input_size: tuple[int, ...], *, batch_size: int,
             repeats: int, warmup: int, device: torch.device | str | None) -> dict[str, Any]:
    own_device = _checked_device(name, model, device)
    one = torch.zeros(1, *input_size, device=own_device)
    try:
        with preserved_mode(model):  # eval: BatchNorm1d in train mode would refuse a batch of one
            model.eval()
            n_flops = flops(model, one)
    except ForwardPassError as error:
        raise ValueError(
            f"model {name!r} failed on an input of shape {tuple(one.shape)}: {error}\n"
            "input_size is the shape of ONE example without the batch dimension, "
            "e.g. (1, 8, 8) for a grey 8×8 image or (64,) for 64 features."
        ) from error
    layer, layer_type, layer_params = _largest_layer(model)
    params = count_params(model)
    result = {
        "params": params, "largest_layer": layer, "largest_layer_type": layer_type,
        "largest_share": layer_params / params if params else 0.0,
        "macs": n_flops // 2, "flops": n_flops,
    }
    if repeats > 0 and own_device.type != "meta":  # a model on meta has no data to time
        generator = torch.Generator().manual_seed(0)  # leaves the global RNG untouched
        x = torch.randn(batch_size, *input_size, generator=generator).to(own_device)
        with preserved_mode(model):
            model.eval()
            result["ms_per_batch"] = median_forward_ms(model, x, repeats=repeats, warmup=warmup)
        result["ms_per_image"] = result["ms_per_batch"] / batch_size
    return result


def compare_models(
    models: Mapping[str, nn.Module],
    input_size: tuple[int, ...],
    *,
    histories: Mapping[str, Any] | None = None,
    batch_size: int = 64,
    repeats: int = 7,
    warmup: int = 2,
    device: torch.device | str | None = None,
) -> ComparisonTable:
    """One row per model: parameters, largest layer and its share, MACs, FLOPs, forward time.

    ``input_size`` is one example's shape without the batch dimension. MACs and FLOPs
    (= 2 × MACs) are for one example, counted in eval mode (so BatchNorm accepts a batch
    of one and Dropout is off). The forward time is the median of ``repeats`` timed
    runs on a batch of ``batch_size`` (after ``warmup`` untimed ones) in eval mode under
    ``torch.inference_mode()``, and ``ms_per_image`` is that time divided by
    ``batch_size``; ``repeats=0``, or a model on the meta device, skips timing.
    The models are not moved or changed: each module's train/eval mode is restored.
    ``histories`` maps some of the names to a ``History`` or a list of them (one per seed)
    and adds the validation accuracy of the last epoch (mean ± sample std over runs) and
    the mean training time. ``table.select()`` keeps the machine-independent columns
    (for nbval-checked cells).

    >>> mlp = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> table = compare_models({"mlp": mlp, "linear": nn.Linear(4, 8)}, (4,), repeats=0)
    >>> print(table)
    model   params  largest layer   share  MACs  FLOPs
    ------  ------  -------------  ------  ----  -----
    mlp         23  0 (Linear)      65.2%    18     36
    linear      40  Linear         100.0%    32     64
    """
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict {name: nn.Module}")
    for name, model in models.items():
        if not isinstance(model, nn.Module):
            raise TypeError(f"models[{name!r}] is a {type(model).__name__}, not an nn.Module")
    input_size = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    histories = dict(histories or {})
    unknown = sorted(set(histories) - set(models))
    if unknown:
        raise ValueError(f"histories for unknown model(s) {unknown}; models are {list(models)}")
    if repeats < 0 or warmup < 0 or batch_size < 1:
        raise ValueError("repeats and warmup must be >= 0 and batch_size >= 1")
    rows = []
    for name, model in models.items():
        measured = _measure(name, model, input_size, batch_size=batch_size, repeats=repeats,
                            warmup=warmup, device=device)
        if name in histories:
            measured |= _history_stats(name, histories[name])
        rows.append(ComparisonRow(name=name, **measured))
    return ComparisonTable(rows)
