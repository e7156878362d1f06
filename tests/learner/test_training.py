"""course_utils.training: fit, evaluate, History, clear errors, callbacks, grad norms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils import (
    History,
    LossShapeError,
    TrainingDivergedError,
    evaluate,
    fit,
    grad_norms_per_layer,
    make_linear_task,
    make_loaders,
    set_seed,
    summarise_runs,
    train_val_split,
)


def _linear_loaders(n: int = 200, batch_size: int = 50, seed: int = 0):
    X, y = make_linear_task(n, seed=seed)
    return make_loaders(*train_val_split(X, y, seed=seed), batch_size=batch_size, seed=seed)


def _mlp(seed: int = 0, hidden: int = 8) -> nn.Sequential:
    set_seed(seed)
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def test_fit_learns_the_linear_task() -> None:
    train, val = _linear_loaders()
    history = fit(_mlp(), train, val, epochs=30, lr=0.03, progress=False)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.final_val_acc >= 0.9
    assert history.best_val_acc >= history.final_val_acc


def test_history_has_one_entry_per_epoch() -> None:
    train, val = _linear_loaders()
    h = fit(_mlp(), train, val, epochs=7, progress=False)
    assert h.epochs == 7
    for values in (h.train_loss, h.train_acc, h.val_loss, h.val_acc, h.epoch_seconds):
        assert len(values) == 7
    assert h.seconds >= sum(h.epoch_seconds) > 0
    assert not h.stopped_early and h.best_epoch is not None and 1 <= h.best_epoch <= 7
    assert set(h.to_dict()) >= {"train_loss", "val_acc", "events", "seconds", "best_epoch"}
    assert h.gap() == [t - v for t, v in zip(h.train_acc, h.val_acc, strict=True)]
    assert "epochs=7" in repr(h)


def test_history_without_validation() -> None:
    train, _ = _linear_loaders()
    h = fit(_mlp(), train, epochs=3, progress=False)
    assert h.val_loss == [] and h.val_acc == [] and h.best_epoch is None
    with pytest.raises(ValueError, match="no val_loader"):
        _ = h.final_val_acc


def test_same_seed_same_losses() -> None:
    runs = []
    for _ in range(2):
        train, val = _linear_loaders(seed=1)
        runs.append(fit(_mlp(seed=4), train, val, epochs=5, progress=False))
    assert runs[0].train_loss == runs[1].train_loss
    assert runs[0].val_loss == runs[1].val_loss
    train, val = _linear_loaders(seed=1)
    other = fit(_mlp(seed=5), train, val, epochs=5, progress=False)
    assert other.train_loss != runs[0].train_loss


def test_progress_false_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    train, val = _linear_loaders()
    fit(_mlp(), train, val, epochs=3, progress=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_progress_true_shows_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    train, val = _linear_loaders()
    fit(_mlp(), train, val, epochs=3, progress=True)
    _, err = capsys.readouterr()
    assert "epochs" in err and "val_loss" in err


def test_bce_target_without_a_column_is_named() -> None:
    X, y = make_linear_task(40)
    train, _ = make_loaders(X, y.squeeze(1), batch_size=40)
    with pytest.raises(LossShapeError) as caught:
        fit(_mlp(), train, epochs=1, progress=False)
    message = str(caught.value)
    assert "[40, 1]" in message and "[40]" in message and "y.unsqueeze(1)" in message


def test_bce_output_without_a_column_is_named() -> None:
    X, y = make_linear_task(40)
    train, _ = make_loaders(X, y, batch_size=40)
    model = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))  # outputs [N]
    with pytest.raises(LossShapeError, match=r"\[40\] but targets of shape \[40, 1\].*squeeze"):
        fit(model, train, epochs=1, progress=False)


def test_cross_entropy_target_errors() -> None:
    X = torch.randn(30, 4)
    model = nn.Linear(4, 3)
    float_targets = make_loaders(X, torch.zeros(30, 1), batch_size=30)[0]
    with pytest.raises(LossShapeError, match=r"int64.*y\.long\(\)"):
        fit(model, float_targets, epochs=1, progress=False)
    out_of_range = make_loaders(X, torch.arange(30) % 5, batch_size=30)[0]
    with pytest.raises(LossShapeError, match=r"0\.\.4.*3 class scores"):
        fit(model, out_of_range, epochs=1, progress=False)


def test_multiclass_uses_cross_entropy_and_argmax_accuracy() -> None:
    set_seed(0)
    X = torch.randn(300, 2)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()  # classes 0, 1, 2
    train, val = make_loaders(X, y, X, y, batch_size=100)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    h = fit(model, train, val, epochs=40, lr=0.03, progress=False)
    assert h.final_val_acc > 0.85
    loss, acc = evaluate(model, val)
    assert loss == pytest.approx(h.final_val_loss) and acc == pytest.approx(h.final_val_acc)


def test_evaluate_restores_mode_and_matches_manual_accuracy() -> None:
    X, y = make_linear_task(64)
    loader, _ = make_loaders(X, y, batch_size=16)
    model = _mlp()
    model.train()
    loss, acc = evaluate(model, loader)
    assert model.training
    with torch.no_grad():
        out = model(X)
    assert acc == pytest.approx(float(((out > 0).float() == y).float().mean()))
    assert loss == pytest.approx(float(nn.BCEWithLogitsLoss()(out, y)), rel=1e-5)


def test_nan_loss_stops_with_the_epoch_and_a_hint() -> None:
    X, y = make_linear_task(40)
    X[0, 0] = float("nan")
    train, _ = make_loaders(X, y, batch_size=40)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1.*lower learning rate") as caught:
        fit(_mlp(), train, epochs=3, progress=False)
    assert caught.value.history.epochs == 1 and math.isnan(caught.value.history.train_loss[0])


class _Memorise(nn.Module):
    """Fits the training set by memorising; its validation loss rises as it trains."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                 nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_early_stopping_stops_and_restores_the_best_weights() -> None:
    set_seed(0)
    X, y = make_linear_task(60, noise=0.3, seed=0)  # noisy labels: overfits fast
    train, val = make_loaders(*train_val_split(X, y, val_fraction=0.5), batch_size=30)
    model = _Memorise()
    h = fit(model, train, val, epochs=300, lr=0.01, early_stopping_patience=5,
            restore_best=True, progress=False)
    assert h.stopped_early and h.epochs < 300
    assert h.best_epoch == h.epochs - 5
    assert h.val_loss[h.best_epoch - 1] == min(h.val_loss)
    restored_loss, _ = evaluate(model, val)
    assert restored_loss == pytest.approx(min(h.val_loss), rel=1e-5)


def test_early_stopping_needs_validation() -> None:
    train, _ = _linear_loaders()
    with pytest.raises(ValueError, match="val_loader"):
        fit(_mlp(), train, epochs=2, early_stopping_patience=2, progress=False)


def test_on_epoch_end_can_stop_and_add_events() -> None:
    train, val = _linear_loaders()
    seen = []

    def stop_at_three(epoch, history, model, optimizer) -> bool:
        seen.append((epoch, history.epochs, isinstance(optimizer, torch.optim.Adam)))
        if epoch == 2:
            history.add_event("halfway")
        return epoch == 3

    h = fit(_mlp(), train, val, epochs=10, on_epoch_end=stop_at_three, progress=False)
    assert h.epochs == 3 and seen == [(1, 1, True), (2, 2, True), (3, 3, True)]
    assert h.events == [(2, "halfway")]


class _Growable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 8), nn.ReLU())
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_a_callback_that_grows_the_model_keeps_training_the_new_layer() -> None:
    set_seed(0)
    train, val = _linear_loaders()
    model = _Growable()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    added: list[nn.Linear] = []

    def grow(epoch, history, model, opt) -> None:
        if epoch == 2:
            layer = nn.Linear(8, 8)
            model.body.append(layer)
            model.body.append(nn.ReLU())
            opt.add_param_group({"params": list(layer.parameters())})
            history.add_event("deeper")
            added.append(layer)

    h = fit(model, train, val, epochs=5, optimizer=optimizer, on_epoch_end=grow, progress=False)
    assert h.epochs == 5 and h.events == [(2, "deeper")]
    before = added[0].weight.detach().clone()
    fit(model, train, epochs=1, optimizer=optimizer, progress=False)
    assert not torch.equal(before, added[0].weight), "the new layer must be trained"
    assert all(math.isfinite(v) for v in h.train_loss)


def test_optimizer_choices() -> None:
    train, _ = _linear_loaders()
    for name in ("sgd", "adamw"):
        assert fit(_mlp(), train, epochs=1, optimizer=name, lr=0.1, progress=False).epochs == 1
    with pytest.raises(ValueError, match="adam"):
        fit(_mlp(), train, epochs=1, optimizer="rmsprop", progress=False)


def test_device_handling_on_cpu() -> None:
    train, val = _linear_loaders()
    model = _mlp()
    h = fit(model, train, val, epochs=2, device="cpu", progress=False)
    assert next(model.parameters()).device.type == "cpu" and h.epochs == 2
    h = fit(model, train, val, epochs=1, device=torch.device("cpu"), progress=False)
    assert h.epochs == 1


def test_fit_restores_the_models_mode() -> None:
    train, _ = _linear_loaders()
    model = _mlp().eval()
    fit(model, train, epochs=1, progress=False)
    assert not model.training


def test_grad_norms_per_layer_leaves_the_model_alone() -> None:
    model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 4), nn.Sigmoid(),
                          nn.Linear(4, 1))
    X, y = make_linear_task(32)
    weights = [p.detach().clone() for p in model.parameters()]
    model.eval()
    norms = grad_norms_per_layer(model, X, y)
    assert list(norms) == ["0", "2", "4"]
    assert all(v > 0 for v in norms.values())
    assert all(p.grad is None for p in model.parameters())
    assert not model.training
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters(), strict=True))
    # the last layer's gradient, computed by hand
    model.zero_grad()
    nn.BCEWithLogitsLoss()(model(X), y).backward()
    assert norms["4"] == pytest.approx(float(model[4].weight.grad.norm()))


def test_history_repr_and_defaults_are_independent() -> None:
    a, b = History(), History()
    a.events.append((1, "x"))
    assert b.events == []


def test_summarise_runs_reports_final_epoch_statistics() -> None:
    runs = {
        "a": [History(train_loss=[1.0, 0.2], val_acc=[0.5, 0.9]),
              History(train_loss=[1.0, 0.4], val_acc=[0.5, 0.7])],
        "b": [History(train_loss=[0.3], val_acc=[0.8])],
    }
    table = summarise_runs(runs, metrics=["train_loss", "val_acc"])
    row = table["a", "val_acc"]
    assert (row.mean, row.min, row.max, row.n) == pytest.approx((0.8, 0.7, 0.9, 2))
    assert row.std == pytest.approx(0.1414, abs=1e-4)
    assert table["b", "train_loss"].std == 0.0
    text = repr(table)
    assert "val_acc (%)" in text and "80.0" in text and "0.3000" in text
    with pytest.raises(KeyError):
        table["c", "val_acc"]


def test_on_epoch_end_sees_the_model_in_train_mode() -> None:
    train, val = _linear_loaders()
    modes = []
    fit(_mlp(), train, val, epochs=2, progress=False,
        on_epoch_end=lambda epoch, history, model, optimizer: modes.append(model.training))
    assert modes == [True, True]


def test_fit_reads_on_one_screen() -> None:
    """The function a learner most needs to read stays a short loop over named steps."""
    import ast
    import inspect

    from course_utils import training

    node = next(n for n in ast.walk(ast.parse(inspect.getsource(training)))
                if isinstance(n, ast.FunctionDef) and n.name == "fit")
    code_lines = node.end_lineno - node.body[1].lineno + 1  # body[0] is the docstring
    assert code_lines <= 50, f"fit has {code_lines} lines of code; move a step into a helper"


def test_best_epoch_keeps_the_first_of_equal_losses_and_counts_patience() -> None:
    from course_utils.training import _BestEpoch

    model = nn.Linear(1, 1)
    best = _BestEpoch(patience=2, keep_weights=True)
    assert [best.update(e, loss, model) for e, loss in [(1, 0.5), (2, 0.5), (3, 0.7)]] == [
        False, False, True]
    assert best.epoch == 1 and best.since == 2 and best.state is not None
    assert not _BestEpoch(patience=None, keep_weights=False).update(1, float("nan"), model)
