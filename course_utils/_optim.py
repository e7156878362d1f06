"""Keeping an optimizer in step with a model that grows: it only ever updates the tensors it
was given when it was built, so new parameters must be added and replaced ones dropped.

Learners import :func:`add_to_optimizer` and :func:`replace_in_optimizer` from
:mod:`course_utils.growth`, whose lesson (07) they belong to; :func:`carry_state` is the
part of ``net2wider(optimizer=...)`` that does not depend on Net2Net.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

__all__ = ["add_to_optimizer", "replace_in_optimizer", "carry_state", "Remap"]

#: How one state tensor of an old parameter becomes the new parameter's: ``remap(t, power)``,
#: ``power`` 1 for first moments (``exp_avg``), 2 for second moments (``exp_avg_sq``).
Remap = Callable[[torch.Tensor, int], torch.Tensor]


def _as_params(params: Iterable[torch.Tensor] | nn.Module) -> list[torch.Tensor]:
    """A list of distinct tensors, in order; a module stands for its parameters."""
    if isinstance(params, nn.Module):
        params = params.parameters()
    if isinstance(params, torch.Tensor):
        raise TypeError("pass a list of parameters (or a module), not a single tensor")
    unique: dict[int, torch.Tensor] = {}
    for p in params:
        unique.setdefault(id(p), p)
    return list(unique.values())


def _held(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


def add_to_optimizer(
    optimizer: torch.optim.Optimizer, params: Iterable[torch.Tensor] | nn.Module
) -> int:
    """Register ``params`` as a new param group (same settings as the first group).

    Parameters the optimizer already holds are skipped; returns how many were added.

    >>> old, new = nn.Linear(2, 2), nn.Linear(2, 2)
    >>> opt = torch.optim.Adam(old.parameters(), lr=0.01)
    >>> add_to_optimizer(opt, new.parameters()), add_to_optimizer(opt, new)
    (2, 0)
    >>> len(opt.param_groups), opt.param_groups[1]["lr"]
    (2, 0.01)
    """
    held = _held(optimizer)
    fresh = [p for p in _as_params(params) if id(p) not in held]
    if fresh:
        settings = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
        optimizer.add_param_group({**settings, "params": fresh})
    return len(fresh)


def replace_in_optimizer(
    optimizer: torch.optim.Optimizer, old_params: Iterable[torch.Tensor] | nn.Module,
    new_params: Iterable[torch.Tensor] | nn.Module,
) -> int:
    """Drop ``old_params`` and their state (e.g. Adam's moments); add ``new_params``.

    When there are as many new parameters as old ones, they are paired in order: each new
    parameter joins the group of the old one it replaces, so per-group learning rates and
    weight decay are kept. Otherwise every new parameter joins the group of the first old one
    held. When no old one was held, the new ones get a group of their own
    (:func:`add_to_optimizer`). Returns how many were added.

    >>> old, new = nn.Linear(2, 2), nn.Linear(2, 3)
    >>> opt = torch.optim.Adam(old.parameters())
    >>> old(torch.ones(1, 2)).sum().backward(); opt.step()
    >>> replace_in_optimizer(opt, old, new)
    2
    >>> [tuple(p.shape) for p in opt.param_groups[0]["params"]], len(opt.state)
    ([(3, 2), (3,)], 0)
    """
    old_list, new_list = _as_params(old_params), _as_params(new_params)
    group_of: dict[int, dict] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            group_of[id(p)] = group
    targets = [group_of.get(id(p)) for p in old_list]
    stale = {id(p) for p in old_list}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) in stale:
                optimizer.state.pop(p, None)
        group["params"] = [p for p in group["params"] if id(p) not in stale]
    held_targets = [g for g in targets if g is not None]
    if not held_targets:
        return add_to_optimizer(optimizer, new_list)
    if len(new_list) != len(old_list):
        targets = [held_targets[0]] * len(new_list)
    held = _held(optimizer)
    added = 0
    for p, group in zip(new_list, targets, strict=True):
        if id(p) in held:
            continue
        (group if group is not None else held_targets[0])["params"].append(p)
        held.add(id(p))
        added += 1
    return added


def carry_state(
    optimizer: torch.optim.Optimizer, pairs: Sequence[tuple[torch.Tensor, torch.Tensor, Remap]],
) -> None:
    """Replace each ``old`` parameter by ``new`` in ``optimizer`` and carry its state along.

    State tensors shaped like the old parameter (Adam's moments) go through ``remap``; a key
    containing ``"sq"`` is a second moment (power 2). Anything else (Adam's step counter) is
    copied as it is.

    >>> old, new = nn.Linear(2, 1), nn.Linear(2, 1)
    >>> opt = torch.optim.Adam(old.parameters())
    >>> old(torch.ones(1, 2)).sum().backward(); opt.step()
    >>> as_is = lambda t, power: t.clone()
    >>> carry_state(opt, [(old.weight, new.weight, as_is), (old.bias, new.bias, as_is)])
    >>> sorted(opt.state[new.weight]), old.weight in opt.state
    (['exp_avg', 'exp_avg_sq', 'step'], False)
    """
    state = {id(old): optimizer.state.get(old, {}) for old, _, _ in pairs}
    replace_in_optimizer(optimizer, [old for old, _, _ in pairs], [new for _, new, _ in pairs])
    for old, new, remap in pairs:
        carried = {}
        for key, value in state[id(old)].items():
            if isinstance(value, torch.Tensor) and value.shape == old.shape:
                carried[key] = remap(value, 2 if "sq" in key else 1)
            else:  # e.g. Adam's step counter
                carried[key] = value.clone() if isinstance(value, torch.Tensor) else value
        if carried:
            optimizer.state[new] = carried
