"""Trusted probes of exercise 07 (see ``course_utils.grading.trusted``).

Each body runs in the learner's kernel and in a kernel holding only the solution, with the
values the grader draws; the grader compares the two results itself. Names such as
``deepening_param_count`` are the notebook's.
"""
# ruff: noqa: F821 (the answers' names live in the kernels, not here)

from course_utils.grading.trusted import probe


@probe("q1_test", n_in=(1, 500), hidden=(1, 500), n_out=(1, 500),
       what="deepening_param_count({n_in}, {hidden}, {n_out})")
def deepening_count(observe, seed, n_in, hidden, n_out):
    return deepening_param_count(n_in, hidden, n_out)


@probe("q1_test", repeat=1, what="deepening_param_count() with the question's sizes")
def deepening_count_defaults(observe, seed):
    return deepening_param_count()


@probe("q2_test", n_in=(1, 40), n_out=(1, 40), batch=(1, 6),
       what="deeper(nn.Linear({n_in}, {n_out})) on a random batch of {batch}")
def deeper_layer(observe, seed, n_in, n_out, batch):
    import torch
    from torch import nn

    layer = observe.seeded(seed, lambda: nn.Linear(n_in, n_out))
    before = [layer.weight.detach().clone(), layer.bias.detach().clone()]
    grown = deeper(layer)
    modules = list(grown) if isinstance(grown, nn.Sequential) else []
    new = modules[2] if len(modules) == 3 else None
    x = observe.randn(seed + 1, batch, n_in)
    with torch.no_grad():
        out = torch.relu(grown(x))
    return {
        "sequential": isinstance(grown, nn.Sequential),
        "kinds": [type(m).__name__ for m in modules],
        "first is layer": bool(modules) and modules[0] is layer,
        "layer unchanged": torch.equal(layer.weight, before[0])
                           and torch.equal(layer.bias, before[1]),
        "new weight": None if new is None else new.weight.detach(),
        "new bias": None if new is None or new.bias is None else new.bias.detach(),
        "new trainable": None if new is None else [p.requires_grad for p in new.parameters()],
        "out": out,
    }


@probe("q3_test", lr=[0.0005, 0.001, 0.002, 0.003, 0.005, 0.02, 0.03, 0.05, 0.1],
       steps_before=(1, 5), steps_after=(1, 4),
       what="grow(model, optimizer, lr={lr}) after {steps_before} Adam steps, then "
            "{steps_after} more")
def grow_optimizer(observe, seed, lr, steps_before, steps_after):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model, optimizer = make_model_and_optimizer()
    x, y = observe.randn(seed, 32, 8), torch.randint(0, 4, (32,))

    def train(steps):
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

    train(steps_before)
    old = list(model.parameters())
    saved = [{k: v.clone() for k, v in optimizer.state[p].items()} for p in old]
    old_lr = optimizer.param_groups[0]["lr"]
    grow(model, optimizer, lr)
    kinds = [type(m).__name__ for m in model]
    new = model[2] if len(model) > 2 else None
    params = list(model.parameters())

    def group_lr(p):
        found = [g["lr"] for g in optimizer.param_groups if any(q is p for q in g["params"])]
        return found[0] if len(found) == 1 else found

    kept = []
    for p, state in zip(old, saved):
        now = optimizer.state.get(p, {})
        kept.append(set(now) == set(state) and all(torch.equal(now[k], v)
                                                   for k, v in state.items()))
    found = {
        "kinds": kinds,
        "new layer": None if not isinstance(new, nn.Linear)
                     else [new.in_features, new.out_features],
        "old layers kept": [any(p is q for q in params) for p in old],
        "old lr": [group_lr(p) == old_lr for p in old],
        "lr of every parameter": [group_lr(p) for p in params],
        "old state kept": kept,
    }
    train(steps_after)
    found["steps of every parameter"] = [
        float(optimizer.state[p]["step"]) if "step" in optimizer.state.get(p, {}) else None
        for p in params]
    return found


@probe("q4_test", n_in=(1, 20), n=(1, 12), n_out=(1, 10), extra=(1, 12), batch=(1, 6),
       what="widen(Linear({n_in}, {n}), Linear({n}, {n_out}), mapping) with {extra} random "
            "extra units, and with the identity mapping")
def widen_random(observe, seed, n_in, n, n_out, extra, batch):
    import random

    import torch
    from torch import nn

    rng = random.Random(seed)
    x = observe.randn(seed + 1, batch, n_in)
    found = []
    for mapping in (list(range(n)) + [rng.randrange(n) for _ in range(extra)], list(range(n))):
        a = observe.seeded(seed, lambda: nn.Linear(n_in, n))
        b = observe.seeded(seed + 2, lambda: nn.Linear(n, n_out))
        saved = [p.detach().clone() for p in [*a.parameters(), *b.parameters()]]
        new_a, new_b = widen(a, b, list(mapping))
        with torch.no_grad():
            out = new_b(torch.relu(new_a(x)))
        found.append({
            "kinds": [type(new_a).__name__, type(new_b).__name__],
            "a weight": new_a.weight.detach(), "a bias": new_a.bias.detach(),
            "b weight": new_b.weight.detach(), "b bias": new_b.bias.detach(),
            "out": out,
            "a and b unchanged": all(torch.equal(p, q) for p, q in
                                     zip([*a.parameters(), *b.parameters()], saved)),
        })
    return found


@probe("q4_test", n_in=(1, 20), n=(2, 12), n_out=(1, 10), extra=(1, 8), batch=(1, 6),
       what="widen(Linear({n_in}, {n}), Linear({n}, {n_out}), mapping) where one unit gets "
            "{extra} extra copies")
def widen_skewed(observe, seed, n_in, n, n_out, extra, batch):
    import random

    import torch
    from torch import nn

    rng = random.Random(seed)
    mapping = list(range(n)) + [rng.randrange(n)] * extra
    a = observe.seeded(seed, lambda: nn.Linear(n_in, n))
    b = observe.seeded(seed + 2, lambda: nn.Linear(n, n_out))
    new_a, new_b = widen(a, b, mapping)
    with torch.no_grad():
        out = new_b(torch.relu(new_a(observe.randn(seed + 1, batch, n_in))))
    return {"a weight": new_a.weight.detach(), "a bias": new_a.bias.detach(),
            "b weight": new_b.weight.detach(), "b bias": new_b.bias.detach(), "out": out}
