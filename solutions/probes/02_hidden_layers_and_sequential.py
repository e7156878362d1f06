"""Trusted probes of exercise 02 (see ``course_utils.grading.trusted``).

Each body runs in the learner's kernel and in a kernel holding only the solution, with the
values the grader draws; the grader compares the two results itself. Names such as
``stack_param_count`` are the notebook's.
"""
# ruff: noqa: F821 (the answers' names live in the kernels, not here)

from course_utils.grading.trusted import probe


@probe("q1_test", n_in=(1, 400), h1=(1, 400), h2=(1, 400), n_out=(1, 400),
       what="stack_param_count({n_in}, {h1}, {h2}, {n_out})")
def stack_count(observe, seed, n_in, h1, h2, n_out):
    return stack_param_count(n_in, h1, h2, n_out)


@probe("q1_test", n_in=(1, 3), h1=(1, 3), h2=(1, 3), n_out=(1, 3),
       what="stack_param_count({n_in}, {h1}, {h2}, {n_out})")
def stack_count_tiny(observe, seed, n_in, h1, h2, n_out):
    return stack_param_count(n_in, h1, h2, n_out)


@probe("q1_test", repeat=1, what="stack_param_count() with the question's sizes")
def stack_count_defaults(observe, seed):
    return stack_param_count()


@probe("q2_test", batch=(1, 300), produced=(1, 300), built_for=(1, 300), out=(1, 300),
       what="error_numbers on the message of a {batch}-row batch reaching a layer built for "
            "{built_for} features from one making {produced}")
def read_error(observe, seed, batch, produced, built_for, out):
    import torch
    from torch import nn

    if built_for == produced:  # the layers must not chain
        built_for += 1
    model = nn.Sequential(nn.Linear(2, produced), nn.Linear(built_for, out))
    try:
        model(torch.zeros(batch, 2))
    except RuntimeError as error:
        message = str(error)
    else:
        raise AssertionError("the layers chained")
    return list(error_numbers(message))


@probe("q2_test", repeat=2, what="error_numbers on messages whose four numbers all differ")
def read_error_distinct(observe, seed):
    import random

    import torch
    from torch import nn

    rng = random.Random(seed)
    answers = []
    for _ in range(3):
        batch, produced, built_for, out = rng.sample(range(1, 600), 4)
        model = nn.Sequential(nn.Linear(2, produced), nn.Linear(built_for, out))
        try:
            model(torch.zeros(batch, 2))
        except RuntimeError as error:
            answers.append(list(error_numbers(str(error))))
    return answers


@probe("q2_test", batch=(1, 30), steps=(2, 30), produced=(1, 200), built_for=(1, 200),
       what="error_numbers on the message of a {batch}x{steps}x{produced} input reaching a "
            "layer built for {built_for} features")
def read_error_3d(observe, seed, batch, steps, produced, built_for):
    import torch
    from torch import nn

    if built_for == produced:
        built_for += 1
    model = nn.Sequential(nn.Linear(2, produced), nn.Linear(built_for, 3))
    try:
        model(torch.zeros(batch, steps, 2))
    except RuntimeError as error:
        message = str(error)
    else:
        raise AssertionError("the layers chained")
    return list(error_numbers(message))


@probe("q3_test", depth=(1, 6), batch=(1, 5),
       what="build_mlp on {depth} layers of random widths, run on a batch of {batch}")
def build(observe, seed, depth, batch):
    import random

    import torch

    rng = random.Random(seed)
    widths = [rng.choice([1, rng.randint(1, 8), rng.randint(1, 80)]) for _ in range(depth + 1)]
    model = build_mlp(widths)
    kinds = [type(layer).__name__ for layer in model]
    sizes = [[m.in_features, m.out_features] for m in model if hasattr(m, "in_features")]
    seen = observe.behave(model, observe.randn(seed, batch, widths[0]), seed)
    return {"widths": widths, "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "kinds": kinds, "sizes": sizes,
            "behave": seen,
            "NaN in the output": bool(torch.isnan(seen["out"]).any())}



@probe("q4_test", a=(1, 60), b=(1, 60), c=(1, 60), batch=(1, 20), rtol=1e-4, atol=1e-4,
       what="collapse(nn.Sequential(nn.Linear({a}, {b}), nn.Linear({b}, {c}))) on a batch "
            "of {batch}")
def collapsed(observe, seed, a, b, c, batch):
    import torch
    from torch import nn

    two = observe.seeded(seed, lambda: nn.Sequential(nn.Linear(a, b), nn.Linear(b, c)))
    before = [p.detach().clone() for p in two.parameters()]
    x = observe.randn(seed + 1, batch, a)
    one = collapse(two)
    after = list(two.parameters())
    unchanged = len(after) == len(before) and all(
        torch.equal(p, q) for p, q in zip(before, after))
    mine = {p.data_ptr() for p in two.parameters()}
    with torch.no_grad():
        out = one(x)
    return {"NaN in the output": bool(torch.isnan(out).any()),
            "class": f"{type(one).__module__}.{type(one).__qualname__}",
            "sizes": [one.in_features, one.out_features],
            "shapes": [list(p.shape) for p in one.parameters()],
            "new layer": all(one is not m for m in two.modules()),
            "shares a tensor with the two layers": any(p.data_ptr() in mine
                                                       for p in one.parameters()),
            "two layers unchanged": unchanged, "out": out}
