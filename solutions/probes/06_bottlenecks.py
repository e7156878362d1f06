"""Trusted probes of exercise 06 (see ``course_utils.grading.trusted``).

Each body runs in the learner's kernel and in a kernel holding only the solution, with the
values the grader draws; the grader compares the two results itself. Names such as
``parameter_change`` are the notebook's.
"""
# ruff: noqa: F821 (the answers' names live in the kernels, not here)

from course_utils.grading.trusted import probe


@probe("q1_test", n_in=(1, 1000), hidden=(1, 512), squeeze=(1, 512), n_out=(1, 200),
       what="parameter_change({n_in}, {hidden}, {squeeze}, {n_out})")
def change_any(observe, seed, n_in, hidden, squeeze, n_out):
    return parameter_change(n_in, hidden, squeeze, n_out)


@probe("q1_test", n_in=(1, 1000), hidden=(64, 512), squeeze=(1, 8), n_out=(64, 200),
       what="parameter_change({n_in}, {hidden}, {squeeze}, {n_out}), where the model shrinks")
def change_shrinks(observe, seed, n_in, hidden, squeeze, n_out):
    return parameter_change(n_in, hidden, squeeze, n_out)


@probe("q1_test", n_in=(1, 1000), hidden=(1, 300), n_out=(1, 50), extra=(0, 100),
       what="parameter_change({n_in}, {hidden}, {n_out}+{extra}, {n_out}), where the model grows")
def change_grows(observe, seed, n_in, hidden, n_out, extra):
    return parameter_change(n_in, hidden, n_out + extra, n_out)


@probe("q1_test", repeat=1, what="parameter_change() with the question's sizes")
def change_defaults(observe, seed):
    return parameter_change()


@probe("q2_test", channels=(1, 64), squeeze=(1, 32), height=(1, 8), width=(1, 8), batch=(1, 3),
       what="bottleneck_block({channels}, {squeeze}) on a {batch}×{channels}×{height}×{width} "
            "random batch")
def block_behaviour(observe, seed, channels, squeeze, height, width, batch):
    block = bottleneck_block(channels, squeeze)
    return observe.behave(block, observe.randn(seed, batch, channels, height, width), seed)



@probe("q2_test", repeat=1, what="bottleneck_block(256, 64) on a 1×256×4×4 random batch")
def block_question(observe, seed):
    block = bottleneck_block(256, 64)
    return observe.behave(block, observe.randn(seed, 1, 256, 4, 4), seed)



@probe("q3_test", channels=(1, 2048), budget=(0, 5_000_000),
       what="widest_squeeze({channels}, {budget})")
def squeeze_any(observe, seed, channels, budget):
    return widest_squeeze(channels, budget)


@probe("q3_test", channels=(1, 3000), s=(1, 400),
       what="widest_squeeze({channels}, budget) for budgets just under, at and just over the "
            "weights of a block with squeeze {s}, and for budgets 0, 2·{channels}+8 and "
            "2·{channels}+9")
def squeeze_edges(observe, seed, channels, s):
    def weights(width):
        return 2 * channels * width + 9 * width * width

    budgets = [weights(s) - 1, weights(s), weights(s + 1) - 1, 0, 2 * channels + 8,
               2 * channels + 9]
    return [widest_squeeze(channels, budget) for budget in budgets]


@probe("q4_test", n_in=(2, 64), n_out=(2, 64), batch=(1, 5), rtol=1e-4, atol=1e-4,
       what="low_rank(nn.Linear({n_in}, {n_out}), r) for r = 1, min({n_in}, {n_out}) and one "
            "in between")
def low_rank_pairs(observe, seed, n_in, n_out, batch):
    import torch
    from torch import nn

    full = min(n_in, n_out)
    x = observe.randn(seed + 1, batch, n_in)
    found = []
    for r in sorted({1, 1 + seed % full, full}):
        layer = observe.seeded(seed, lambda: nn.Linear(n_in, n_out))
        before = [layer.weight.detach().clone(), layer.bias.detach().clone()]
        pair = low_rank(layer, r)
        kinds = [type(m).__name__ for m in pair] if isinstance(pair, nn.Sequential) else None
        first, second = pair[0], pair[-1]
        with torch.no_grad():
            out = pair(x)
        found.append({
            "r": r,
            "sequential": isinstance(pair, nn.Sequential),
            "kinds": kinds,
            "first": [first.in_features, first.out_features, first.bias is None],
            "second": [second.in_features, second.out_features],
            "parameters": sum(p.numel() for p in pair.parameters()),
            "combined weight": (second.weight @ first.weight).detach(),
            "second bias": None if second.bias is None else second.bias.detach(),
            "out": out,
            "layer unchanged": torch.equal(layer.weight, before[0])
                               and torch.equal(layer.bias, before[1]),
        })
    return found


@probe("q4_test", n=(1, 40), rtol=1e-4, atol=1e-4,
       what="low_rank(nn.Linear(1, {n}), 1) and low_rank(nn.Linear({n}, 1), 1)")
def low_rank_thin(observe, seed, n):
    import torch
    from torch import nn

    found = []
    for n_in, n_out in [(1, n), (n, 1)]:
        layer = observe.seeded(seed, lambda i=n_in, o=n_out: nn.Linear(i, o))
        pair = low_rank(layer, 1)
        first, second = pair[0], pair[-1]
        with torch.no_grad():
            out = pair(observe.randn(seed, 3, n_in))
        found.append({"combined weight": (second.weight @ first.weight).detach(), "out": out,
                      "first bias": first.bias is None,
                      "parameters": sum(p.numel() for p in pair.parameters())})
    return found
