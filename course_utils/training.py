"""A small, readable training loop: :func:`fit` returns a :class:`History` of every epoch.

>>> import torch.nn as nn
>>> from course_utils.data import make_linear_task, make_loaders
>>> _ = torch.manual_seed(0)
>>> X, y = make_linear_task(200)
>>> train_loader, _ = make_loaders(X, y, batch_size=200)
>>> model = nn.Sequential(nn.Linear(2, 1))
>>> history = fit(model, train_loader, epochs=50, lr=0.05, progress=False)
>>> history.epochs, history.train_loss[-1] < history.train_loss[0]
(50, True)
"""

from __future__ import annotations

import copy
import math
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from course_utils._meta import preserved_mode

__all__ = [
    "History", "fit", "evaluate", "grad_norms_per_layer", "check_loss_inputs",
    "LossShapeError", "TrainingDivergedError", "summarise_runs", "RunsTable", "RunStats",
]

EpochCallback = Callable[[int, "History", nn.Module, torch.optim.Optimizer], "bool | None"]
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
_SAME_SHAPE_LOSSES = (nn.BCEWithLogitsLoss, nn.BCELoss, nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss)


class LossShapeError(ValueError):
    """The model's output and the targets do not fit the loss function."""


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite. ``.history`` holds the epochs before it happened."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


@dataclass
class History:
    """What happened during :func:`fit`, one list entry per epoch (epochs count from 1).

    ``train_loss``/``train_acc`` are averages over the epoch's batches, measured while
    training; ``val_loss``/``val_acc`` are measured after the epoch in eval mode (empty
    without a validation loader). ``events`` are ``(epoch, label)`` markers for plots.

    >>> h = History(train_loss=[0.9, 0.5], train_acc=[0.6, 0.8], val_loss=[0.8, 0.6],
    ...             val_acc=[0.7, 0.75])
    >>> h.epochs, h.final_val_acc, round(h.final_gap, 2)
    (2, 0.75, 0.05)
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    events: list[tuple[int, str]] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        """Number of epochs trained."""
        return len(self.train_loss)

    @property
    def final_train_loss(self) -> float:
        return self.train_loss[-1]

    @property
    def final_train_acc(self) -> float:
        return self.train_acc[-1]

    @property
    def final_val_loss(self) -> float:
        return self._val(self.val_loss)[-1]

    @property
    def final_val_acc(self) -> float:
        return self._val(self.val_acc)[-1]

    @property
    def best_val_loss(self) -> float:
        return min(self._val(self.val_loss))

    @property
    def best_val_acc(self) -> float:
        return max(self._val(self.val_acc))

    @property
    def final_gap(self) -> float:
        """Generalisation gap at the last epoch: training minus validation accuracy."""
        return self.final_train_acc - self.final_val_acc

    def gap(self) -> list[float]:
        """Training minus validation accuracy, per epoch."""
        return [t - v for t, v in zip(self.train_acc, self._val(self.val_acc), strict=True)]

    def add_event(self, label: str, epoch: int | None = None) -> None:
        """Mark ``epoch`` (default: the last one trained) with ``label``, e.g. "grew a layer"."""
        self.events.append((self.epochs if epoch is None else epoch, label))

    def to_dict(self) -> dict:
        """Plain lists and numbers (JSON-ready)."""
        return asdict(self)

    def _val(self, values: list[float]) -> list[float]:
        if not values:
            raise ValueError("this History has no validation results: fit had no val_loader")
        return values

    def __repr__(self) -> str:
        parts = [f"epochs={self.epochs}"]
        if self.train_loss:
            parts.append(f"train_loss={self.final_train_loss:.4f}")
            parts.append(f"train_acc={self.final_train_acc:.3f}")
        if self.val_loss:
            parts.append(f"val_loss={self.final_val_loss:.4f}")
            parts.append(f"val_acc={self.final_val_acc:.3f}")
        if self.stopped_early:
            parts.append(f"stopped_early at best_epoch={self.best_epoch}")
        return f"History({', '.join(parts)}, seconds={self.seconds:.1f})"


def _model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _default_loss(output: Tensor) -> nn.Module:
    one_column = output.ndim == 1 or output.shape[-1] == 1
    return nn.BCEWithLogitsLoss() if one_column else nn.CrossEntropyLoss()


def check_loss_inputs(loss_fn: nn.Module, output: Tensor, target: Tensor) -> None:
    """Raise :class:`LossShapeError` for the classic output/target mistakes, with the fix.

    >>> try:
    ...     check_loss_inputs(nn.BCEWithLogitsLoss(), torch.zeros(4, 1), torch.zeros(4))
    ... except LossShapeError as error:
    ...     print(str(error).split(". ")[0])
    BCEWithLogitsLoss got model output of shape [4, 1] but targets of shape [4]
    """
    name = type(loss_fn).__name__
    out, tgt = list(output.shape), list(target.shape)
    if isinstance(loss_fn, _SAME_SHAPE_LOSSES) and out != tgt:
        if len(out) == 2 and out[1] == 1 and tgt == out[:1]:
            fix = "Give the targets a column: y = y.unsqueeze(1) (or y.view(-1, 1))."
        elif len(tgt) == 2 and tgt[1] == 1 and out == tgt[:1]:
            fix = ("Make them agree: targets y.squeeze(1), or keep the model's output as a "
                   "column (end the model with nn.Linear(..., 1) and do not squeeze it).")
        else:
            fix = "Output and targets must have the same shape, one value per sample."
        raise LossShapeError(
            f"{name} got model output of shape {out} but targets of shape {tgt}. It "
            f"compares them element by element, so the shapes must be equal (a mismatch can "
            f"silently broadcast to a {len(output)}×{len(target)} grid). {fix}"
        )
    if isinstance(loss_fn, (nn.BCEWithLogitsLoss, nn.BCELoss)) and not target.is_floating_point():
        raise LossShapeError(f"{name} needs float targets (0.0 or 1.0), got {target.dtype}. "
                             "Use y.float().")
    if isinstance(loss_fn, nn.CrossEntropyLoss):
        if target.is_floating_point() and out != tgt:
            raise LossShapeError(
                f"CrossEntropyLoss needs class indices as int64 (shape {out[:1]}), got "
                f"{target.dtype} targets of shape {tgt}. Use y.long() (and y.squeeze(1) if "
                "y is a column). For a single output column use BCEWithLogitsLoss instead."
            )
        if not target.is_floating_point() and target.numel():
            low, high, classes = int(target.min()), int(target.max()), out[1] if len(out) > 1 else 1
            if low < 0 or high >= classes:
                raise LossShapeError(
                    f"CrossEntropyLoss: targets range over {low}..{high}, but the model "
                    f"outputs {classes} class scores (valid targets 0..{classes - 1}). "
                    "Make the last layer's out_features equal the number of classes."
                )


def _correct(output: Tensor, target: Tensor) -> int:
    """Correct predictions in a batch: threshold one logit at 0, else argmax."""
    if output.ndim == 1 or output.shape[-1] == 1:
        return int(((output.reshape(-1) > 0) == (target.reshape(-1) > 0.5)).sum())
    if target.is_floating_point() and target.shape == output.shape:  # class probabilities
        target = target.argmax(-1)
    return int((output.argmax(-1) == target.reshape(-1)).sum())


def _run_epoch(model, loader, loss_fn, device, optimizer=None) -> tuple[float, float]:
    """One pass over ``loader``; trains when given an optimizer. Returns (loss, accuracy)."""
    total_loss, correct, seen = 0.0, 0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        output = model(X)
        check_loss_inputs(loss_fn, output, y)
        loss = loss_fn(output, y)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        total_loss += float(loss.detach()) * len(X)
        correct += _correct(output.detach(), y)
        seen += len(X)
    if seen == 0:
        raise ValueError("the data loader yielded no batches")
    return total_loss / seen, correct / seen


def _resolve_loss(loss_fn, model, loader, device) -> nn.Module:
    if loss_fn is not None:
        return loss_fn
    X, _ = next(iter(loader))
    with preserved_mode(model), torch.no_grad():
        model.eval()
        output = model(X[:2].to(device))
    return _default_loss(output)


def _validate(model: nn.Module, loader: Iterable, loss_fn: nn.Module,
              device: torch.device) -> tuple[float, float]:
    """Loss and accuracy over ``loader`` in eval mode, without gradients; every module's
    train/eval mode is given back afterwards."""
    with preserved_mode(model), torch.no_grad():
        model.eval()
        return _run_epoch(model, loader, loss_fn, device)


def evaluate(
    model: nn.Module, loader: Iterable, loss_fn: nn.Module | None = None, *,
    device: torch.device | str | None = None,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode without gradients.

    Every module's train/eval mode is restored afterwards.

    >>> from course_utils.data import make_linear_task, make_loaders
    >>> X, y = make_linear_task(100)
    >>> loader, _ = make_loaders(X, y)
    >>> model = nn.Linear(2, 1)
    >>> with torch.no_grad():
    ...     _ = model.weight.fill_(1.0), model.bias.zero_()
    >>> evaluate(model, loader)[1]
    1.0
    """
    device = torch.device(device) if device is not None else _model_device(model)
    loss_fn = _resolve_loss(loss_fn, model, loader, device)
    return _validate(model, loader, loss_fn, device)


def _make_optimizer(optimizer, model: nn.Module, lr: float, weight_decay: float):
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if optimizer not in _OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {sorted(_OPTIMIZERS)} or a torch.optim.Optimizer, "
            f"got {optimizer!r}"
        )
    return _OPTIMIZERS[optimizer](model.parameters(), lr=lr, weight_decay=weight_decay)


@dataclass
class _BestEpoch:
    """Early stopping and the best weights: watches the validation loss after each epoch.

    >>> best = _BestEpoch(patience=1, keep_weights=False)
    >>> [best.update(epoch, loss, nn.Linear(1, 1)) for epoch, loss in [(1, 0.5), (2, 0.4), (3, 0.6)]]
    [False, False, True]
    >>> best.epoch
    2
    """

    patience: int | None  # stop after this many epochs without a better loss (None: never)
    keep_weights: bool  # keep a copy of the best epoch's state_dict, to restore it at the end
    epoch: int | None = None
    loss: float = math.inf
    since: int = 0  # epochs since the best one
    state: dict | None = None

    def update(self, epoch: int, val_loss: float, model: nn.Module) -> bool:
        """Record ``epoch``'s validation loss; return True when patience has run out."""
        if self.epoch is None or val_loss < self.loss:
            self.epoch, self.loss, self.since = epoch, val_loss, 0
            if self.keep_weights:
                self.state = copy.deepcopy(model.state_dict())
        else:
            self.since += 1
        return self.patience is not None and self.since >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights back into ``model`` (a warning if they no longer fit)."""
        if self.state is None:
            return
        try:
            model.load_state_dict(self.state)
        except RuntimeError:
            warnings.warn(
                f"restore_best: the model's parameters changed after epoch {self.epoch} (did it "
                "grow?), so its best weights could not be restored; keeping the final weights",
                stacklevel=3,
            )


def _check_finite(history: History, epoch: int, lr: float) -> None:
    """Raise :class:`TrainingDivergedError` if the epoch's training or validation loss is NaN or inf."""
    train_loss = history.train_loss[-1]
    if not all(math.isfinite(v) for v in (train_loss, *history.val_loss[-1:])):
        raise TrainingDivergedError(
            f"the loss became {train_loss} at epoch {epoch}: training diverged. "
            f"Try a lower learning rate (lr={lr} now; e.g. lr={lr / 10:g}), check the "
            "inputs for NaN, or standardise the features.", history)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    epochs: int,
    lr: float = 1e-3,
    optimizer: str | torch.optim.Optimizer = "adam",
    loss_fn: nn.Module | None = None,
    weight_decay: float = 0.0,
    device: torch.device | str | None = None,
    progress: bool = True,
    early_stopping_patience: int | None = None,
    restore_best: bool = False,
    on_epoch_end: EpochCallback | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; return its :class:`History`.

    - ``optimizer``: "adam", "adamw", "sgd", or an optimizer already built on the model
      (used as is, ``lr`` and ``weight_decay`` ignored).
    - ``loss_fn``: default ``BCEWithLogitsLoss`` for one output column (logits), else
      ``CrossEntropyLoss``. Output/target mismatches raise :class:`LossShapeError`.
    - ``device``: None trains where the model is; a device moves the model there first.
      Batches are always moved to the model's device.
    - ``early_stopping_patience``: stop once validation loss has not improved for that many
      epochs; ``restore_best`` reloads the weights of the best epoch.
    - ``on_epoch_end(epoch, history, model, optimizer)``: called after each epoch's
      validation; return True to stop. It may add parameters to the same optimizer.
    - A NaN or infinite loss raises :class:`TrainingDivergedError`.
    - Afterwards every module is back in the train/eval mode it had before.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if (early_stopping_patience is not None or restore_best) and val_loader is None:
        raise ValueError("early stopping and restore_best need a val_loader to watch")
    if device is not None:
        model.to(device)
    device = _model_device(model)
    loss_fn = _resolve_loss(loss_fn, model, train_loader, device)  # also runs lazy layers once
    optimizer = _make_optimizer(optimizer, model, lr, weight_decay)

    from tqdm.auto import tqdm

    history, best = History(), _BestEpoch(early_stopping_patience, restore_best)
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc="epochs", unit="epoch", disable=not progress)
    with preserved_mode(model):
        try:
            for epoch in bar:
                epoch_start, patience_out = time.perf_counter(), False
                model.train()
                train_loss, train_acc = _run_epoch(model, train_loader, loss_fn, device, optimizer)
                history.train_loss.append(train_loss)
                history.train_acc.append(train_acc)
                postfix = {"train_loss": f"{train_loss:.4f}"}
                if val_loader is not None:
                    val_loss, val_acc = _validate(model, val_loader, loss_fn, device)
                    history.val_loss.append(val_loss)
                    history.val_acc.append(val_acc)
                    postfix["val_loss"] = f"{val_loss:.4f}"
                    patience_out = best.update(epoch, val_loss, model)
                    history.best_epoch = best.epoch
                history.epoch_seconds.append(time.perf_counter() - epoch_start)
                bar.set_postfix(postfix, refresh=False)
                _check_finite(history, epoch, lr)
                stop = bool(on_epoch_end(epoch, history, model, optimizer)) if on_epoch_end else False
                if patience_out:
                    history.stopped_early = stop = True
                if stop:
                    break
        finally:
            bar.close()
            history.seconds = time.perf_counter() - start
    if restore_best:
        best.restore(model)
    return history


def grad_norms_per_layer(
    model: nn.Module, X: Tensor, y: Tensor, loss_fn: nn.Module | None = None
) -> dict[str, float]:
    """L2 norm of each Linear/Conv layer's weight gradient after one backward pass on (X, y).

    Keys are module names in order from input to output. The model's ``.grad`` fields,
    weights and train/eval mode are left as they were.

    >>> model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> norms = grad_norms_per_layer(model, torch.ones(3, 2), torch.ones(3, 1))
    >>> list(norms)
    ['0', '2']
    """
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    if not layers:
        raise ValueError("grad_norms_per_layer: the model has no Linear or Conv layer")
    device = _model_device(model)
    X, y = X.to(device), y.to(device)
    output = model(X)
    loss_fn = loss_fn if loss_fn is not None else _default_loss(output)
    check_loss_inputs(loss_fn, output, y)
    grads = torch.autograd.grad(loss_fn(output, y), [m.weight for _, m in layers])
    return {name: float(g.norm()) for (name, _), g in zip(layers, grads, strict=True)}


@dataclass(frozen=True)
class RunStats:
    """One metric's final-epoch value over several runs (seeds) of one model."""

    label: str
    metric: str
    mean: float
    std: float
    min: float
    max: float
    n: int


@dataclass(frozen=True)
class RunsTable:
    """Rows of :class:`RunStats`; prints as a table, ``table[label, metric]`` picks one."""

    rows: tuple[RunStats, ...]

    def __getitem__(self, key: tuple[str, str]) -> RunStats:
        for row in self.rows:
            if (row.label, row.metric) == key:
                return row
        raise KeyError(f"no row for {key!r}")

    def __repr__(self) -> str:
        width = max([len("model"), *(len(r.label) for r in self.rows)]) + 2
        head = f"{'model':<{width}}{'metric':<13}{'mean':>9}{'± std':>9}{'min':>9}{'max':>9}"
        lines = [head + "  runs"]
        for r in self.rows:
            scale, fmt = (100, "{:9.1f}") if r.metric.endswith("acc") else (1, "{:9.4f}")
            numbers = "".join(fmt.format(v * scale) for v in (r.mean, r.std, r.min, r.max))
            unit = " (%)" if scale == 100 else ""
            lines.append(f"{r.label:<{width}}{r.metric + unit:<13}{numbers}  {r.n}")
        return "\n".join(lines)


def summarise_runs(
    runs: Mapping[str, Sequence[History]],
    metrics: Sequence[str] = ("train_loss", "val_loss", "train_acc", "val_acc"),
) -> RunsTable:
    """Mean, standard deviation, min and max of each final-epoch metric over the runs.

    >>> a = History(train_loss=[0.5, 0.3], val_loss=[0.6, 0.4])
    >>> b = History(train_loss=[0.5, 0.1], val_loss=[0.6, 0.2])
    >>> table = summarise_runs({"tiny": [a, b]}, metrics=["val_loss"])
    >>> round(table["tiny", "val_loss"].mean, 3), table["tiny", "val_loss"].n
    (0.3, 2)
    """
    rows = []
    for label, histories in runs.items():
        for metric in metrics:
            values = [getattr(h, metric)[-1] for h in histories]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            rows.append(RunStats(label, metric, statistics.fmean(values), std, min(values),
                                 max(values), len(values)))
    return RunsTable(tuple(rows))
