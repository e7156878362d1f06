"""Trusted probes of exercise 04 (see ``course_utils.grading.trusted``).

Each body runs in the learner's kernel and in a kernel holding only the solution, with the
values the grader draws; the grader compares the two results itself. Names such as
``deep_param_count`` are the notebook's.
"""
# ruff: noqa: F821 (the answers' names live in the kernels, not here)

from course_utils.grading.trusted import probe


@probe("q1_test", n_in=(1, 500), width=(1, 500), n_out=(1, 500),
       what="deep_param_count({n_in}, {width}, {n_out})")
def deep_count(observe, seed, n_in, width, n_out):
    return deep_param_count(n_in, width, n_out)


@probe("q1_test", n_in=(1, 3), width=(1, 3), n_out=(1, 3),
       what="deep_param_count({n_in}, {width}, {n_out})")
def deep_count_tiny(observe, seed, n_in, width, n_out):
    return deep_param_count(n_in, width, n_out)


@probe("q1_test", repeat=1, what="deep_param_count() with the question's sizes")
def deep_count_defaults(observe, seed):
    return deep_param_count()


@probe("q2_test", depth=(1, 5), batch=(1, 5),
       activation=["ReLU", "Tanh", "Sigmoid", "PReLU", "GELU", "Square"],
       what="build_mlp(widths, activation={activation}) on {depth} layers of random widths, "
            "run on a batch of {batch}")
def build(observe, seed, depth, batch, activation):
    import random

    import torch
    from torch import nn

    class Square(nn.Module):  # an activation of the learner's own kind
        def forward(self, x):
            return x * x

    act = Square if activation == "Square" else getattr(nn, activation)
    rng = random.Random(seed)
    widths = [rng.choice([1, rng.randint(1, 8), rng.randint(1, 60)]) for _ in range(depth + 1)]
    model = build_mlp(widths, act)
    acts = [m for m in model if not isinstance(m, nn.Linear)]
    seen = observe.behave(model, observe.randn(seed, batch, widths[0]), seed)
    return {"widths": widths, "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "kinds": [type(m).__name__ for m in model], "activations": len(acts),
            "distinct activation objects": len({id(m) for m in acts}),
            "behave": seen,
            "NaN in the output": bool(torch.isnan(seen["out"]).any())}



@probe("q2_test", depth=(1, 5), batch=(1, 5),
       what="build_mlp(widths) with the default activation on {depth} layers of random "
            "widths, run on a batch of {batch}")
def build_default(observe, seed, depth, batch):
    import random

    import torch
    from torch import nn

    rng = random.Random(seed)
    widths = [rng.randint(1, 40) for _ in range(depth + 1)]
    model = build_mlp(widths)
    acts = [m for m in model if not isinstance(m, nn.Linear)]
    seen = observe.behave(model, observe.randn(seed, batch, widths[0]), seed)
    return {"kinds": [type(m).__name__ for m in model],
            "distinct activation objects": len({id(m) for m in acts}),
            "behave": seen,
            "NaN in the output": bool(torch.isnan(seen["out"]).any())}



@probe("q2_test", entries=[0, 1], width=(1, 100),
       what="build_mlp on a list of {entries} width(s)")
def build_too_short(observe, seed, entries, width):
    try:
        build_mlp([width] * entries)
    except Exception as error:  # the kind of error is the answer
        return type(error).__name__
    return "no error"


@probe("q3_test", n_in=(1, 500), n_out=(1, 100), hidden=(1, 5000),
       what="widest_hidden_layer(budget, {n_in}, {n_out}) for budgets at and around the "
            "count of H = {hidden}")
def widest(observe, seed, n_in, n_out, hidden):
    import random

    def count(h):
        return h * (n_in + 1) + n_out * (h + 1)

    rng = random.Random(seed)
    low, high = count(hidden), count(hidden + 1)
    budgets = [low, low + 1, high - 1, high, rng.randrange(low, high)]
    return [widest_hidden_layer(budget, n_in, n_out) for budget in budgets]


@probe("q3_test", budget=(5, 200_000), what="widest_hidden_layer({budget}) with the default sizes")
def widest_defaults(observe, seed, budget):
    return widest_hidden_layer(budget)


@probe("q4_test", rows=(1, 64), cols=[0, 1, 3, 8], scale=[0.3, 1.0, 4.0], rtol=1e-5,
       atol=1e-5, what="bce_with_logits on a random batch of {rows} rows (logits of scale "
                       "{scale}), its gradient, and on a batch of logits far from 0")
def bce(observe, seed, rows, cols, scale):
    import random

    import torch

    shape = (rows,) if cols == 0 else (rows, cols)
    z = observe.randn(seed, *shape) * scale
    y = (observe.randn(seed + 1, *shape) > 0).float()
    z0, y0 = z.clone(), y.clone()
    value = bce_with_logits(z, y)
    unchanged = torch.equal(z, z0) and torch.equal(y, y0)
    leaf = z0.clone().requires_grad_(True)
    loss = bce_with_logits(leaf, y0)
    grad = None
    if isinstance(loss, torch.Tensor) and loss.requires_grad and loss.numel() == 1:
        loss.backward()
        grad = leaf.grad

    rng = random.Random(seed)
    far = torch.tensor([rng.choice([-1, 1]) * rng.uniform(20, 300) for _ in range(rows + 2)])
    labels = torch.tensor([float(rng.random() < 0.5) for _ in range(rows + 2)])
    with torch.no_grad():
        extreme = bce_with_logits(far, labels)
    def has_nan(t):  # the grader's tensor comparison lets NaN through: say it here
        return isinstance(t, torch.Tensor) and bool(torch.isnan(t).any())

    return {"NaN in the loss, the loss on large logits, the gradient":
            [has_nan(value), has_nan(extreme), has_nan(grad)],
            "logits and targets unchanged": unchanged, "loss": value,
            "loss on large logits": extreme, "loss's gradient w.r.t. the logits": grad}


@probe("q5_test", judge=True, repeat=1,
       what="make_moons_classifier() trained by the test's recipe outside your kernel",
       reasons={"none": "make_moons_classifier() raised an error, or fewer than three models "
                        "came back",
                "budget": "the model holds more than 40 numbers (parameters, buffers, and what its "
                          "forward computes beside its layers)",
                "shape": "3 examples do not give an output of shape (3, 1)",
                "probabilities": "after training every output lies between 0 and 1: "
                                 "probabilities, not logits",
                "accuracy": "validation accuracy below 95% for two of the three seeds"})
def moons(observe, seed):
    import torch

    from course_utils import make_loaders, make_moons_task, set_seed, train_val_split

    x_train, y_train, x_val, y_val = train_val_split(*make_moons_task(1000, noise=0.2, seed=0),
                                                     seed=0)
    models = []
    for model_seed in range(3):  # the test's steps up to training, so the random state is too
        set_seed(model_seed)
        model = make_moons_classifier()
        model(x_val[:3])
        make_loaders(x_train, y_train, x_val, y_val, batch_size=len(x_train), seed=model_seed)
        models.append({"model": observe.describe(model), "rng": torch.get_rng_state()})
    return models


@moons.reference
def moons_reference(observe, seed, learner):
    import copy
    import json

    import torch

    from course_utils import fit, make_loaders, make_moons_task, train_val_split

    sent = json.loads(learner)
    if not isinstance(sent, list) or len(sent) < 3:
        return "none"
    data = train_val_split(*make_moons_task(1000, noise=0.2, seed=0), seed=0)
    x_train, y_train, x_val, y_val = data
    passed = failed = 0
    for model_seed, item in enumerate(sent[:3]):
        if not isinstance(item, dict) or "model" not in item:
            return "none"
        model = observe.rebuild(item["model"])
        if observe.state_size(model) > 40:
            return "budget"
        with torch.no_grad(), torch.random.fork_rng():  # on a copy: training starts as in the test
            shape = tuple(copy.deepcopy(model)(x_val[:3]).shape)
        if shape != (3, 1):
            return "shape"
        train_loader, val_loader = make_loaders(x_train, y_train, x_val, y_val,
                                                batch_size=len(x_train), seed=model_seed)
        try:  # what dropout draws, as in the test
            torch.set_rng_state(torch.tensor(item["rng"]["$tensor"]["values"], dtype=torch.uint8))
        except (KeyError, TypeError, ValueError, RuntimeError):
            return "none"
        history = fit(model, train_loader, val_loader, epochs=200, lr=0.05, progress=False)
        with torch.no_grad():
            out = model(x_val)
        if not (out.min() < 0 or out.max() > 1):
            return "probabilities"
        passed += history.final_val_acc >= 0.95
        failed += history.final_val_acc < 0.95
        if passed >= 2:
            return True
        if failed >= 2:
            return "accuracy"
    return "none"
