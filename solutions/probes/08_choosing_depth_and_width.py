"""Trusted probes of exercise 08 (see ``course_utils.grading.trusted``).

Each body runs in the learner's kernel and in a kernel holding only the solution, with the
values the grader draws; the grader compares the two results itself. Names such as
``mlp_params`` are the notebook's. Accuracies and losses drawn here are multiples of 1/256,
so ``best - tolerance`` and equal losses are exact in floating point: a model exactly at the
threshold is at it however the learner writes the comparison.
"""
# ruff: noqa: F821 (the answers' names live in the kernels, not here)

from course_utils.grading.trusted import probe


@probe("q1_test", repeat=5, depth=(1, 12), width=(1, 300), what="mlp_params({depth}, {width})")
def mlp_count(observe, seed, depth, width):
    return mlp_params(depth, width)


@probe("q1_test", repeat=1, what="mlp_params on depth 1 or width 1 and a few random sizes")
def mlp_count_edges(observe, seed):
    import random

    rng = random.Random(seed)
    cases = [(1, 1), (1, 2), (2, 1), (7, 1)]
    cases += [(rng.randint(1, 30), rng.randint(1, 1000)) for _ in range(6)]
    return [mlp_params(depth, width) for depth, width in cases]


@probe("q2_test", repeat=4, n=(2, 12),
       what="smallest_within on random tables (one of {n} models), for several tolerances")
def smallest(observe, seed, n):
    import random

    rng = random.Random(seed)
    shapes = [f"{d}x{w}" for d in range(1, 7) for w in (8, 16, 32, 48, 64, 128)]

    def table(n):
        accs = rng.sample(range(96, 251), n)  # distinct accuracies in 1/256, the best below 1
        if rng.random() < 0.5:  # a plateau: two models with the same accuracy
            accs[rng.randrange(n)] = accs[rng.randrange(n)]
        params = [rng.randint(10, 30_000) for _ in range(n)]
        i, j = rng.sample(range(n), 2)
        params[i] = params[j] = min(params)  # two models tie for the fewest parameters
        if rng.random() < 0.7:  # and often another tie elsewhere
            params[rng.randrange(n)] = params[rng.randrange(n)]
        while len(set(zip(params, accs))) < n:  # no two models alike: one right answer
            params[rng.randrange(n)] += 1
        names = rng.sample(shapes, n)
        rows = [{"name": names[i], "params": params[i], "val_acc": accs[i] / 256}
                for i in range(n)]
        rng.shuffle(rows)
        best = max(r["val_acc"] for r in rows)
        if rows[-1]["val_acc"] == best:  # the best model is not the last one
            rows.insert(0, rows.pop())
        if sorted(rows, key=lambda r: r["params"]) == rows:  # nor is the list sorted by size
            rows.reverse()
        return rows

    found = []
    for rows in [table(n), *(table(rng.randint(2, 12)) for _ in range(3))]:
        best = max(r["val_acc"] for r in rows)
        # tolerances putting each model exactly at the threshold, none, all, random ones
        tolerances = sorted({best - r["val_acc"] for r in rows} | {0.0, 1.0})
        tolerances += [rng.randint(1, 64) / 256 for _ in range(3)]
        for tolerance in tolerances:
            for order in (rows, rows[::-1]):
                left = list(order)
                while left:  # the answer, then the answer once that model is taken out, ...
                    given = [dict(r) for r in left]
                    answer = smallest_within(given, tolerance)
                    found.append([answer, given == left])
                    rest = [r for r in left if r["name"] != answer]
                    if len(rest) == len(left):
                        break
                    left = rest
    one = [{"name": "only", "params": rng.randint(1, 999), "val_acc": rng.randint(0, 256) / 256}]
    given = [dict(r) for r in one]
    found.append([smallest_within(given, rng.choice([0.0, 0.25])), given == one])
    return found


@probe("q3_test", repeat=5, n=(1, 30), patience=(1, 6),
       what="early_stop on random loss curves (one of {n} epochs), patience {patience} and others")
def stopping(observe, seed, n, patience):
    import random

    rng = random.Random(seed)

    def curve(length):
        losses = [rng.randint(300, 600)]
        for _ in range(length - 1):
            best, last = min(losses), losses[-1]
            kind = rng.random()
            if kind < 0.25:  # a new best
                value = best - rng.randint(1, 40)
            elif kind < 0.4:  # equal to the best: not an improvement
                value = best
            elif kind < 0.55:  # a plateau
                value = last
            elif kind < 0.75 and last > best + 1:  # lower than the last epoch, not the best
                value = rng.randint(best + 1, last - 1)
            else:  # worse
                value = last + rng.randint(1, 40)
            losses.append(max(value, 1))
        return [v / 256 for v in losses]

    found = []
    for length in [n, *(rng.randint(1, 30) for _ in range(11))]:
        losses = curve(length)
        for wait in sorted({patience, 2, rng.randint(1, 6)}):
            found.append(list(early_stop(list(losses), wait)))
    return found


@probe("q4_test", repeat=1, judge=True,
       what="build_model() trained with the test's recipe (20 epochs, lr 3e-3, seed 0)",
       reasons={"none": "build_model() raised an error, or no model came back",
                "budget": "the model holds more than 5,000 numbers (parameters, frozen ones "
                          "included, buffers, and what its forward computes beside its "
                          "layers)",
                "rng": "the random state after build_model() did not come back",
                "fails": "the model fails on a batch of the digits' validation set",
                "shape": "the model does not give 10 class scores per example",
                "probabilities": "the outputs are probabilities (each row sums to 1), not "
                                 "logits",
                "accuracy": "validation accuracy below 0.94 after 20 epochs"})
def budget_model(observe, seed):
    import torch

    from course_utils import set_seed

    set_seed(0)
    model = build_model()  # the test trains on from the random state building it left
    return {"model": observe.describe(model), "rng": torch.get_rng_state()}


@budget_model.reference
def budget_model_reference(observe, seed, learner):
    import json

    import torch

    from course_utils import evaluate, fit, set_seed
    from course_utils.data import digits_loaders

    sent = json.loads(learner)
    if not isinstance(sent, dict) or "model" not in sent:  # build_model or describe raised
        return "none"
    model = observe.rebuild(sent["model"])
    n_state = observe.state_size(model)
    if n_state > 5_000:
        return "budget"
    set_seed(0)
    try:  # what dropout draws, as in the test (the loaders have their own seed)
        torch.set_rng_state(torch.tensor(sent["rng"]["$tensor"]["values"], dtype=torch.uint8))
    except (KeyError, TypeError, ValueError, RuntimeError):
        return "rng"
    train_loader, val_loader, _ = digits_loaders(batch_size=128, flatten=True)
    x, _ = next(iter(val_loader))
    try:
        out = model(x)
    except Exception:
        return "fails"
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(x), 10):
        return "shape"
    out = out.detach()
    if bool(out.min() >= 0) and torch.allclose(out.sum(dim=1), torch.ones(len(x)), atol=1e-4):
        return "probabilities"
    fit(model, train_loader, epochs=20, lr=3e-3, progress=False)
    val_acc = evaluate(model, val_loader)[1]
    if not val_acc >= 0.94:
        return "accuracy"
    return True
