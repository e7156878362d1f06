"""Small datasets that need no download: two 2-D toy tasks and scikit-learn's digits.

Every function is seeded, so the same ``seed`` gives the same points and the same split
on every machine. Tensors are float32 features and, for the toy tasks, float32 labels
of shape ``[N, 1]`` (ready for ``BCEWithLogitsLoss``); digits labels are int64 classes.

>>> X, y = make_linear_task(100)
>>> X_train, y_train, X_val, y_val = train_val_split(X, y)
>>> train_loader, val_loader = make_loaders(X_train, y_train, X_val, y_val, batch_size=32)
>>> xb, yb = next(iter(train_loader))
>>> tuple(xb.shape), tuple(yb.shape)
((32, 2), (32, 1))
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Sampler, TensorDataset

__all__ = [
    "make_linear_task", "make_moons_task", "train_val_split", "make_loaders",
    "DigitsSplits", "load_digits_tensors", "digits_loaders", "DIGITS_SIZES",
]

DIGITS_SIZES = (8, 16, 32)
_SKLEARN_HINT = (
    "this function needs scikit-learn, which ships the data offline. "
    "Install it with `pip install scikit-learn` (or run `make lab`, which installs the "
    "course's environment)."
)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_linear_task(
    n_samples: int = 1000, *, noise: float = 0.0, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Points uniform in the square [-1, 1]², labelled 1.0 where ``x0 + x1 > 0``.

    ``noise`` is *label* noise: each label is flipped with probability ``noise``
    (the points themselves do not move), so the best possible accuracy is ``1 - noise``.

    >>> X, y = make_linear_task(4, seed=0)
    >>> tuple(X.shape), tuple(y.shape), X.dtype
    ((4, 2), (4, 1), torch.float32)
    >>> bool(torch.equal(y, (X.sum(1, keepdim=True) > 0).float()))
    True
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise is a flip probability in [0, 1], got {noise}")
    gen = _generator(seed)
    X = torch.rand(n_samples, 2, generator=gen) * 2 - 1
    y = (X[:, 0] + X[:, 1] > 0).float().unsqueeze(1)
    flip = torch.rand(n_samples, 1, generator=gen) < noise
    return X, torch.where(flip, 1 - y, y)


def make_moons_task(
    n_samples: int = 1000, *, noise: float = 0.2, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Two interleaving half-moons (scikit-learn's ``make_moons``), standardised.

    ``noise`` is the standard deviation of Gaussian noise added to the points; each
    feature is then shifted and scaled to mean 0 and standard deviation 1.

    >>> X, y = make_moons_task(200, seed=0)
    >>> tuple(X.shape), tuple(y.shape), round(float(y.mean()), 2)
    ((200, 2), (200, 1), 0.5)
    >>> torch.allclose(X.mean(0), torch.zeros(2), atol=1e-5)
    True
    """
    try:
        from sklearn.datasets import make_moons
    except ImportError as error:
        raise ImportError(f"make_moons_task: {_SKLEARN_HINT}") from error
    points, labels = make_moons(n_samples, noise=noise, random_state=seed)
    points = (points - points.mean(0)) / points.std(0)
    X = torch.tensor(points, dtype=torch.float32)
    return X, torch.tensor(labels, dtype=torch.float32).unsqueeze(1)


def _split_indices(labels: Tensor | None, n: int, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices (kept, taken) with ``round(fraction * n)`` taken, per class when ``labels``."""
    gen = _generator(seed)
    if labels is None:
        order = torch.randperm(n, generator=gen)
        n_take = round(fraction * n)
        return order[n_take:], order[:n_take]
    kept, taken = [], []
    for cls in torch.unique(labels):
        members = torch.nonzero(labels == cls).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        n_take = round(fraction * len(members))
        taken.append(members[:n_take])
        kept.append(members[n_take:])
    kept_all, taken_all = torch.cat(kept), torch.cat(taken)
    # Shuffle so that neither part is sorted by class.
    return (kept_all[torch.randperm(len(kept_all), generator=gen)],
            taken_all[torch.randperm(len(taken_all), generator=gen)])


def _class_labels(y: Tensor) -> Tensor:
    labels = y.reshape(len(y), -1)
    if labels.shape[1] != 1:
        raise ValueError(
            f"stratify=True needs one label per sample; y has shape {tuple(y.shape)}. "
            "Pass stratify=False."
        )
    labels = labels[:, 0]
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError(
            "stratify=True needs class labels, but y holds non-integer values "
            "(a regression target?). Pass stratify=False."
        )
    return labels


def train_val_split(
    X: Tensor, y: Tensor, *, val_fraction: float = 0.2, seed: int = 0, stratify: bool = True
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split into ``X_train, y_train, X_val, y_val``; each class keeps its proportion.

    >>> X, y = make_linear_task(1000)
    >>> X_train, y_train, X_val, y_val = train_val_split(X, y, val_fraction=0.2)
    >>> len(X_train), len(X_val)
    (800, 200)
    >>> abs(float(y_train.mean() - y_val.mean())) < 0.01
    True
    """
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}; they must match")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    labels = _class_labels(y) if stratify else None
    train_idx, val_idx = _split_indices(labels, len(X), val_fraction, seed)
    return X[train_idx], y[train_idx], X[val_idx], y[val_idx]


def _as_tuple(batch: list[Tensor] | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return tuple(batch)


class _IndexBatches(Sampler[Tensor]):
    """Yields one tensor of row indices per batch: shuffled (seeded) or in order.

    The generator is created once, so each epoch draws a new order, reproducibly.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int) -> None:
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.generator = _generator(seed)

    def __iter__(self) -> Iterator[Tensor]:
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else (
            torch.arange(self.n))
        return iter(order.split(self.batch_size))

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)


def _tensor_loader(X: Tensor, y: Tensor, batch_size: int, *, shuffle: bool, seed: int) -> DataLoader:
    # The tensors are indexed once per batch with a tensor of indices: the same batches as
    # DataLoader(batch_size=..., shuffle=...), without collating rows one by one (~10× faster).
    batches = _IndexBatches(len(X), batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(TensorDataset(X, y), sampler=batches, batch_size=None, num_workers=0,
                      collate_fn=_as_tuple)


def make_loaders(
    X_train: Tensor, y_train: Tensor, X_val: Tensor | None = None, y_val: Tensor | None = None,
    *, batch_size: int = 64, seed: int = 0,
) -> tuple[DataLoader, DataLoader | None]:
    """DataLoaders over in-memory tensors: the training one shuffles (seeded), the other not.

    Each batch is a tuple ``(X_batch, y_batch)``. ``batch_size`` at least the number of
    rows gives full-batch training. Without validation tensors the second loader is None.

    >>> X, y = make_linear_task(100)
    >>> train_loader, val_loader = make_loaders(X, y, batch_size=40)
    >>> len(train_loader), val_loader is None
    (3, True)
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if (X_val is None) != (y_val is None):
        raise ValueError("pass both X_val and y_val, or neither")
    for name, a, b in (("train", X_train, y_train), ("val", X_val, y_val)):
        if a is not None and len(a) != len(b):
            raise ValueError(f"{name}: X has {len(a)} rows but y has {len(b)}; they must match")
    train = _tensor_loader(X_train, y_train, batch_size, shuffle=True, seed=seed)
    if X_val is None:
        return train, None
    return train, _tensor_loader(X_val, y_val, batch_size, shuffle=False, seed=seed)


@dataclass(frozen=True)
class DigitsSplits:
    """The digits split three ways. X: float32 ``N×1×S×S`` standardised with the
    training mean and standard deviation; y: int64 classes 0..9."""

    X_train: Tensor
    y_train: Tensor
    X_val: Tensor
    y_val: Tensor
    X_test: Tensor
    y_test: Tensor

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{part}={len(getattr(self, 'X_' + part))}" for part in ("train", "val", "test")
        )
        return f"DigitsSplits({sizes}, image={tuple(self.X_train.shape[1:])})"


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(f"load_digits_tensors: {_SKLEARN_HINT}") from error
    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def load_digits_tensors(
    *, size: int = 8, val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0,
    test_seed: int | None = None,
) -> DigitsSplits:
    """scikit-learn's 1,797 handwritten digits (8×8, shipped offline), split and standardised.

    The split is stratified: ``test_fraction`` of each class goes to test, ``val_fraction``
    (of the whole set) to validation, the rest to training. ``size`` 16 or 32 upsamples
    the images with bilinear interpolation. ``test_seed`` (default: ``seed``) draws the test
    split on its own, so repeated splits can re-draw train and validation around one fixed
    test set that no choice ever sees.

    >>> d = load_digits_tensors()
    >>> d
    DigitsSplits(train=1079, val=359, test=359, image=(1, 8, 8))
    >>> abs(float(d.X_train.mean())) < 1e-4, abs(float(d.X_train.std()) - 1) < 1e-4
    (True, True)
    >>> a, b = load_digits_tensors(seed=1, test_seed=0), load_digits_tensors(seed=2, test_seed=0)
    >>> bool((a.y_test == b.y_test).all()), bool((a.y_val == b.y_val).all())
    (True, False)
    """
    if size not in DIGITS_SIZES:
        raise ValueError(f"size must be one of {DIGITS_SIZES} (pixels per side), got {size!r}")
    if val_fraction <= 0 or test_fraction <= 0 or val_fraction + test_fraction >= 1:
        raise ValueError(
            "val_fraction and test_fraction must be positive and sum to less than 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    images, target = _digits_arrays()
    X = torch.from_numpy(images).unsqueeze(1)  # N×1×8×8, pixel values 0..16
    y = torch.from_numpy(target)
    if size != 8:
        X = F.interpolate(X, size=(size, size), mode="bilinear", align_corners=False)
    rest_idx, test_idx = _split_indices(y, len(y), test_fraction, seed if test_seed is None else test_seed)
    train_pos, val_pos = _split_indices(
        y[rest_idx], len(rest_idx), val_fraction / (1 - test_fraction), seed + 1
    )
    train_idx, val_idx = rest_idx[train_pos], rest_idx[val_pos]
    mean, std = X[train_idx].mean(), X[train_idx].std()
    X = (X - mean) / std
    return DigitsSplits(X[train_idx], y[train_idx], X[val_idx], y[val_idx],
                        X[test_idx], y[test_idx])


def digits_loaders(
    *, batch_size: int = 64, size: int = 8, flatten: bool = False, seed: int = 0,
    test_seed: int | None = None,
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """``(train, val, test)`` loaders over :func:`load_digits_tensors` (``seed`` also seeds
    the training loader's shuffling; ``test_seed`` fixes the test split, see there).

    Batches are ``N×1×S×S`` images, or ``N×(S·S)`` rows with ``flatten=True`` (for MLPs).

    >>> train, val, test = digits_loaders(batch_size=128, flatten=True)
    >>> xb, yb = next(iter(train))
    >>> tuple(xb.shape), yb.dtype
    ((128, 64), torch.int64)
    """
    d = load_digits_tensors(size=size, seed=seed, test_seed=test_seed)
    parts = [(d.X_train, d.y_train), (d.X_val, d.y_val), (d.X_test, d.y_test)]
    if flatten:
        parts = [(X.flatten(1), y) for X, y in parts]
    train, val = make_loaders(*parts[0], *parts[1], batch_size=batch_size, seed=seed)
    test = _tensor_loader(*parts[2], batch_size, shuffle=False, seed=seed)
    return train, val, test
