"""Trusted probes of exercise 05 (see ``course_utils.grading.trusted``).

Each body runs in the learner's kernel and in a kernel holding only the solution, with the
values the grader draws; the grader compares the two results itself. Names such as
``conv_net_params`` are the notebook's.
"""
# ruff: noqa: F821 (the answers' names live in the kernels, not here)

from course_utils.grading.trusted import probe


@probe("q1_test", c_in=(1, 8), c1=(1, 64), c2=(1, 64), classes=(1, 20),
       height=[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42,
               44, 46, 48],
       width=[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42,
              44, 46, 48],
       what="conv_net_params({c_in}, {c1}, {c2}, {height}, {width}, {classes})")
def params_any(observe, seed, c_in, c1, c2, classes, height, width):
    return conv_net_params(c_in, c1, c2, height, width, classes)


@probe("q1_test", c_in=(1, 8), c1=(1, 64), c2=(1, 64), classes=(1, 20),
       height=[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32],
       gap=[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24],
       what="conv_net_params({c_in}, {c1}, {c2}, {height}, {height}+{gap}, {classes}), and "
            "with height and width swapped")
def params_not_square(observe, seed, c_in, c1, c2, classes, height, gap):
    width = height + gap
    return [conv_net_params(c_in, c1, c2, height, width, classes),
            conv_net_params(c_in, c1, c2, width, height, classes)]


@probe("q1_test", repeat=1, what="conv_net_params() with the question's sizes")
def params_defaults(observe, seed):
    return conv_net_params()


@probe("q2_test", c_in=(1, 8), c1=(1, 64), c2=(1, 64), classes=(1, 20),
       height=[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42,
               44, 46, 48],
       width=[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42,
              44, 46, 48],
       what="conv_net_macs({c_in}, {c1}, {c2}, {height}, {width}, {classes})")
def macs_any(observe, seed, c_in, c1, c2, classes, height, width):
    return conv_net_macs(c_in, c1, c2, height, width, classes)


@probe("q2_test", c_in=(1, 8), c1=(1, 64), c2=(1, 64), classes=(1, 20),
       height=[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32],
       gap=[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24],
       what="conv_net_macs({c_in}, {c1}, {c2}, {height}, {height}+{gap}, {classes}), and "
            "with height and width swapped")
def macs_not_square(observe, seed, c_in, c1, c2, classes, height, gap):
    width = height + gap
    return [conv_net_macs(c_in, c1, c2, height, width, classes),
            conv_net_macs(c_in, c1, c2, width, height, classes)]


@probe("q2_test", repeat=1, what="conv_net_macs() with the question's sizes")
def macs_defaults(observe, seed):
    return conv_net_macs()


@probe("q3_test", c_in=(1, 64), c_out=(1, 64), k=(1, 7), height=(7, 70), width=(7, 70),
       stride=(1, 4), padding=(0, 3),
       what="conv2d_macs({c_in}, {c_out}, {k}, {height}, {width}, stride={stride}, "
            "padding={padding})")
def conv_any(observe, seed, c_in, c_out, k, height, width, stride, padding):
    return conv2d_macs(c_in, c_out, k, height, width, stride=stride, padding=padding)


@probe("q3_test", c_in=(1, 64), c_out=(1, 64), k=(1, 7), height=(8, 70), width=(8, 70),
       stride=(2, 4), padding=(0, 1),
       what="conv2d_macs({c_in}, {c_out}, {k}, {height}, {width}, stride={stride}, "
            "padding={padding})")
def conv_strided(observe, seed, c_in, c_out, k, height, width, stride, padding):
    return conv2d_macs(c_in, c_out, k, height, width, stride=stride, padding=padding)


@probe("q3_test", c_in=(1, 32), c_out=(1, 32), k=(1, 7), height=(7, 40), gap=(1, 30),
       padding=(1, 3),
       what="conv2d_macs({c_in}, {c_out}, {k}, {height}, {height}+{gap}, stride=1, "
            "padding={padding}), and with height and width swapped")
def conv_padded_not_square(observe, seed, c_in, c_out, k, height, gap, padding):
    width = height + gap
    return [conv2d_macs(c_in, c_out, k, height, width, stride=1, padding=padding),
            conv2d_macs(c_in, c_out, k, width, height, stride=1, padding=padding)]


@probe("q4_test", judge=True, repeat=1,
       what="build_small_digits_net(), rebuilt outside your kernel and trained with the "
            "test's recipe",
       reasons={"none": "build_small_digits_net() raised an error, or no model came back",
                "rng": "the random state after building the network did not come back",
                "conv": "the network has no nn.Conv2d",
                "pool": "the network has no pooling layer",
                "budget": "the network holds 20,000 numbers or more (parameters, buffers, and what "
                          "its forward computes beside its layers)",
                "shape": "a 3×1×8×8 batch does not give a 3×10 output",
                "probabilities": "the outputs are probabilities (each row sums to 1), not "
                                 "logits",
                "accuracy": "validation accuracy below 0.95 after 8 epochs"})
def small_digits_net(observe, seed):
    import torch

    from course_utils import digits_loaders, set_seed

    set_seed(0)  # the test's steps up to training, so the random state is the test's too
    model = build_small_digits_net()
    model(torch.randn(2, 1, 8, 8))  # (in training mode it also moves batch-norm statistics)
    digits_loaders(batch_size=64)
    return {"model": observe.describe(model), "rng": torch.get_rng_state()}


@small_digits_net.reference
def small_digits_net_reference(observe, seed, learner):
    import copy
    import json

    import torch
    from torch import nn

    from course_utils import digits_loaders, fit

    sent = json.loads(learner)
    if not isinstance(sent, dict) or "model" not in sent:
        return "none"
    model = observe.rebuild(sent["model"])
    kinds = [type(m) for m in model.modules()]
    if not any(issubclass(k, nn.Conv2d) for k in kinds):
        return "conv"
    pools = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)
    if not any(issubclass(k, pools) for k in kinds):
        return "pool"
    if observe.state_size(model) >= 20_000:
        return "budget"
    with torch.no_grad(), torch.random.fork_rng():  # on a copy: training starts as in the test
        scores = copy.deepcopy(model)(observe.randn(seed, 3, 1, 8, 8))
    if tuple(scores.shape) != (3, 10):
        return "shape"
    if torch.allclose(scores.sum(dim=1), torch.ones(3), atol=1e-4) and scores.min() >= 0:
        return "probabilities"
    train_loader, val_loader, _ = digits_loaders(batch_size=64)
    try:  # what dropout draws, as in the test
        torch.set_rng_state(torch.tensor(sent["rng"]["$tensor"]["values"], dtype=torch.uint8))
    except (KeyError, TypeError, ValueError, RuntimeError):
        return "rng"
    history = fit(model, train_loader, val_loader, epochs=8, lr=3e-3, progress=False)
    if not history.val_acc[-1] >= 0.95:
        return "accuracy"
    return True
