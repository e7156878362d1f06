"""course_utils.data: shapes, dtypes, determinism, stratification and clear errors."""

from __future__ import annotations

import builtins

import pytest
import torch

from course_utils import (
    DigitsSplits,
    digits_loaders,
    load_digits_tensors,
    make_linear_task,
    make_loaders,
    make_moons_task,
    train_val_split,
)


def test_linear_task_labels_follow_the_rule() -> None:
    X, y = make_linear_task(500, seed=3)
    assert X.shape == (500, 2) and y.shape == (500, 1)
    assert X.dtype == y.dtype == torch.float32
    assert float(X.min()) >= -1 and float(X.max()) <= 1
    assert torch.equal(y, (X[:, :1] + X[:, 1:] > 0).float())


def test_linear_task_label_noise_flips_about_that_fraction() -> None:
    X, y = make_linear_task(4000, noise=0.1, seed=0)
    clean = (X.sum(1, keepdim=True) > 0).float()
    flipped = float((y != clean).float().mean())
    assert 0.08 < flipped < 0.12
    with pytest.raises(ValueError, match="flip probability"):
        make_linear_task(10, noise=1.5)


def test_moons_are_standardised_and_balanced() -> None:
    X, y = make_moons_task(1000, seed=1)
    assert X.shape == (1000, 2) and y.shape == (1000, 1) and X.dtype == torch.float32
    torch.testing.assert_close(X.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(X.std(0, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    assert float(y.mean()) == 0.5


@pytest.mark.parametrize("make", [make_linear_task, make_moons_task])
def test_same_seed_same_data_other_seed_other_data(make) -> None:
    a, b, c = make(100, seed=5), make(100, seed=5), make(100, seed=6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_split_is_a_stratified_deterministic_partition() -> None:
    X, y = make_linear_task(1000, seed=0)
    X_train, y_train, X_val, y_val = train_val_split(X, y, val_fraction=0.25, seed=2)
    assert len(X_train) + len(X_val) == 1000 and abs(len(X_val) - 250) <= 1
    # a partition: every original row exactly once
    rows = torch.cat([X_train, X_val])
    assert torch.equal(rows[rows[:, 0].argsort()], X[X[:, 0].argsort()])
    assert abs(float(y_train.mean()) - float(y.mean())) < 0.005
    assert abs(float(y_val.mean()) - float(y.mean())) < 0.005
    again = train_val_split(X, y, val_fraction=0.25, seed=2)
    assert torch.equal(again[2], X_val)
    other = train_val_split(X, y, val_fraction=0.25, seed=3)
    assert not torch.equal(other[2], X_val)


def test_split_pins_the_indices_across_machines() -> None:
    # Same seed -> same rows on every machine (torch's CPU generator is portable). If this
    # fails after a torch upgrade, every lesson's split changed: regenerate the notebooks.
    X = torch.arange(20.0).unsqueeze(1)
    y = (torch.arange(20) % 2).float().unsqueeze(1)
    _, _, X_val, y_val = train_val_split(X, y, val_fraction=0.2, seed=0)
    assert X_val.flatten().tolist() == [8.0, 7.0, 19.0, 2.0]
    assert float(y_val.sum()) == 2  # two of each class


def test_split_refuses_bad_inputs() -> None:
    X, y = make_linear_task(10)
    with pytest.raises(ValueError, match="10 rows but y has 9"):
        train_val_split(X, y[:9])
    with pytest.raises(ValueError, match="between 0 and 1"):
        train_val_split(X, y, val_fraction=1.0)
    with pytest.raises(ValueError, match="stratify=False"):
        train_val_split(X, torch.randn(10, 1))
    assert len(train_val_split(X, torch.randn(10, 1), stratify=False)[2]) == 2


def test_loaders_shuffle_with_their_own_seed() -> None:
    X = torch.arange(100.0).unsqueeze(1)
    y = torch.zeros(100, 1)
    train, val = make_loaders(X, y, X[:30], y[:30], batch_size=32, seed=0)
    batches = [xb for xb, _ in train]
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    order = torch.cat(batches).flatten()
    assert sorted(order.tolist()) == list(range(100)) and order.tolist() != list(range(100))
    assert torch.cat([xb for xb, _ in val]).flatten().tolist() == list(range(30))
    torch.manual_seed(123)  # the global RNG must not matter
    same = make_loaders(X, y, batch_size=32, seed=0)[0]
    assert torch.equal(torch.cat([xb for xb, _ in same]).flatten(), order)
    second_epoch = torch.cat([xb for xb, _ in train]).flatten()
    assert not torch.equal(second_epoch, order)  # a new order each epoch


def test_loader_errors_are_clear() -> None:
    X, y = make_linear_task(10)
    with pytest.raises(ValueError, match="both X_val and y_val"):
        make_loaders(X, y, X)
    with pytest.raises(ValueError, match="positive int"):
        make_loaders(X, y, batch_size=0)


def _key(image: torch.Tensor) -> tuple[float, ...]:
    return tuple(image.flatten().tolist())


def test_digits_splits() -> None:
    d = load_digits_tensors()
    assert isinstance(d, DigitsSplits)
    n = len(d.X_train) + len(d.X_val) + len(d.X_test)
    assert n == 1797
    assert abs(len(d.X_test) - 0.2 * 1797) < 10 and abs(len(d.X_val) - 0.2 * 1797) < 10
    assert d.X_train.shape[1:] == (1, 8, 8) and d.X_train.dtype == torch.float32
    assert d.y_train.dtype == torch.int64 and set(d.y_test.tolist()) == set(range(10))
    assert abs(float(d.X_train.mean())) < 1e-4 and abs(float(d.X_train.std()) - 1) < 1e-4
    # a partition of the 1,797 images (which are all distinct): no image in two parts
    train, val, test = (set(map(_key, part)) for part in (d.X_train, d.X_val, d.X_test))
    assert len(train | val | test) == 1797
    again = load_digits_tensors()
    assert torch.equal(again.X_val, d.X_val) and torch.equal(again.y_test, d.y_test)
    other = load_digits_tensors(seed=1)
    assert not torch.equal(other.y_val, d.y_val)


@pytest.mark.parametrize("size", [16, 32])
def test_digits_upsampled(size: int) -> None:
    d = load_digits_tensors(size=size)
    assert d.X_val.shape[1:] == (1, size, size)


def test_digits_size_error_names_the_allowed_sizes() -> None:
    with pytest.raises(ValueError, match=r"one of \(8, 16, 32\)"):
        load_digits_tensors(size=28)


def test_digits_loaders_flatten() -> None:
    train, val, test = digits_loaders(batch_size=100, flatten=True)
    xb, yb = next(iter(train))
    assert xb.shape == (100, 64) and yb.shape == (100,)
    images, _ = next(iter(test))
    assert images.shape == (100, 64)
    xb, _ = next(iter(digits_loaders(batch_size=10)[1]))
    assert xb.shape == (10, 1, 8, 8)


def test_missing_sklearn_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        make_moons_task(10)


def test_a_fixed_test_seed_keeps_one_test_set_out_of_every_split() -> None:
    from course_utils.data import load_digits_tensors

    splits = [load_digits_tensors(seed=s, test_seed=0) for s in range(3)]
    first = splits[0].X_test
    for d in splits:
        # the same images in the same order (each split standardises with its own statistics)
        scale = d.X_test.std() / first.std()
        shift = d.X_test.mean() - scale * first.mean()
        assert torch.equal(d.y_test, splits[0].y_test)
        torch.testing.assert_close(d.X_test, scale * first + shift, atol=1e-4, rtol=0)
        seen = torch.cat([d.X_train, d.X_val]).flatten(1)
        assert len(seen) + len(d.X_test) == 1797
    assert not torch.equal(splits[0].y_val, splits[1].y_val)
