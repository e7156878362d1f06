"""Trusted probes of exercise 01 (see ``course_utils.grading.trusted``).

Each body runs in the learner's kernel and in a kernel holding only the solution, with the
values the grader draws; the grader compares the two results itself. Names such as
``mlp_param_count`` are the notebook's.
"""
# ruff: noqa: F821 (the answers' names live in the kernels, not here)

from course_utils.grading.trusted import probe


@probe("q1_test", n_in=(1, 80), hidden=(1, 80), n_out=(1, 80),
       what="mlp_param_count({n_in}, {hidden}, {n_out})")
def mlp_count(observe, seed, n_in, hidden, n_out):
    return mlp_param_count(n_in, hidden, n_out)


@probe("q1_test", repeat=1, what="mlp_param_count() with the question's sizes")
def mlp_count_defaults(observe, seed):
    return mlp_param_count()


@probe("q2_test", batch=(1, 6), what="SmallCNN32() on a batch of {batch} random images")
def cnn_behaviour(observe, seed, batch):
    return observe.behave(SmallCNN32(), observe.randn(seed, batch, 3, 32, 32), seed)



@probe("q3_test", repeat=5, what="leaf_modules_with_params on a random nested model")
def leaves(observe, seed):
    import random

    import torch
    from torch import nn

    rng = random.Random(seed)
    words = ["stem", "head", "body", "norm", "features", "classifier", "block", "act", "zeta",
             "alpha", "proj", "mix"]

    class Scaled(nn.Module):  # a container with a parameter of its own
        def __init__(self, body):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))
            self.body = body

    def named(children):  # names not in sorted order, as a learner's model has them
        model = nn.Sequential()
        for i, child in enumerate(children):
            model.add_module(f"{rng.choice(words)}{i}" if rng.random() < 0.7 else str(i), child)
        return model

    def block(depth):
        kind = rng.randrange(9 if depth < 3 else 6)
        if kind == 0:
            return nn.Linear(rng.randint(1, 5), rng.randint(1, 5), bias=rng.random() < 0.5)
        if kind == 1:
            return rng.choice([nn.ReLU(), nn.Dropout(), nn.Flatten(), nn.Identity()])
        if kind == 2:
            return nn.BatchNorm1d(3, affine=rng.random() < 0.5)
        if kind == 3:
            return nn.Conv2d(2, 3, 1)
        if kind == 4:
            return rng.choice([nn.LSTM(2, 3), nn.Embedding(4, 2)])
        if kind == 5:
            return nn.Sequential()  # an empty container is a leaf without parameters
        if kind in (6, 7):
            return named([block(depth + 1) for _ in range(rng.randint(1, 4))])
        return Scaled(block(depth + 1))

    parts = [block(0) for _ in range(rng.randint(1, 5))]
    parts += [nn.BatchNorm1d(4, affine=False), Scaled(nn.Linear(2, 2)), nn.Linear(3, 1)]
    rng.shuffle(parts)
    return leaf_modules_with_params(named(parts))


@probe("q4_test", h=(3, 12), w=(3, 12), batch=(1, 4),
       what="output_shapes on a random model and a {batch}x2x{h}x{w} input")
def shapes(observe, seed, h, w, batch):
    import random

    import torch
    from torch import nn

    rng = random.Random(seed)

    class Branches(nn.Module):  # both branches read x: the children cannot run in turn
        def __init__(self):
            super().__init__()
            self.left = nn.Conv2d(2, rng.randint(1, 4), 3, padding=1)
            self.right = nn.Sequential(nn.Conv2d(2, rng.randint(1, 4), 1), nn.ReLU())

        def forward(self, x):
            return torch.cat([self.left(x), self.right(x)], dim=1)

    layers = [Branches()]  # always: a model whose children cannot simply run in turn
    if rng.random() < 0.5:
        layers.insert(0, nn.Conv2d(2, 2, 3, padding=1))
    if rng.random() < 0.5:
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    layers += [nn.Flatten(), nn.LazyLinear(rng.randint(1, 6))]
    model = nn.Sequential(*layers)
    x = observe.randn(seed, batch, 2, h, w)
    with torch.no_grad():
        model(x)  # the lazy layer takes its size
    shapes = output_shapes(model, x)
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    return {"shapes": shapes, "hooks left": hooks, "training": model.training}


@probe("q5_test", vocabulary=(1, 500), embed=(1, 60), hidden=(1, 60), classes=(1, 30),
       what="lstm_classifier_param_count({vocabulary}, {embed}, {hidden}, {classes})")
def lstm_count(observe, seed, vocabulary, embed, hidden, classes):
    return lstm_classifier_param_count(vocabulary, embed, hidden, classes)


@probe("q5_test", repeat=1, what="lstm_classifier_param_count() with the question's sizes")
def lstm_count_defaults(observe, seed):
    return lstm_classifier_param_count()
