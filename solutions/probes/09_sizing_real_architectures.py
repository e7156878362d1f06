"""Trusted probes of exercise 09 (see ``course_utils.grading.trusted``).

Each body runs in the learner's kernel and in a kernel holding only the solution, with the
values the grader draws; the grader compares the two results itself. Names such as
``separable_macs`` are the notebook's. Every answer is arithmetic, so every probe is cheap.
"""
# ruff: noqa: F821 (the answers' names live in the kernels, not here)

from course_utils.grading.trusted import probe


@probe("q1_test", repeat=5, c_in=(1, 512), c_out=(1, 512), k=[1, 3, 5, 7, 9, 11],
       h_out=(1, 64), w_out=(1, 64),
       what="separable_macs({c_in}, {c_out}, {k}, {h_out}, {w_out})")
def separable(observe, seed, c_in, c_out, k, h_out, w_out):
    return separable_macs(c_in, c_out, k, h_out, w_out)


@probe("q1_test", repeat=2, what="separable_macs on random sizes, maps never square, and 1s")
def separable_cases(observe, seed):
    import random

    rng = random.Random(seed)
    cases = [(1, 1, 1, 1, 1), (1, 1, 3, 1, 2), (3, 1, 5, 2, 1)]
    for _ in range(8):
        h = rng.randint(1, 112)
        w = rng.choice([v for v in range(1, 113) if v != h])
        c_in, c_out = rng.sample(range(1, 1025), 2)
        cases.append((c_in, c_out, rng.choice([3, 5, 7]), h, w))
    return [separable_macs(*case) for case in cases]


@probe("q2_test", repeat=4, n=(0, 12),
       what="receptive_field_size on random stacks of (kernel, stride) (one of {n} layers)")
def field(observe, seed, n):
    import random

    rng = random.Random(seed)

    def stack(n):
        return [(rng.randint(1, 7), rng.choice([1, 1, 2, 2, 3, 4])) for _ in range(n)]

    stacks = [stack(n), stack(rng.randint(1, 12)), stack(rng.randint(1, 12)), [],
              [(1, 1)], [(rng.randint(2, 7), 1)], [(1, rng.randint(2, 4)), (rng.randint(2, 7), 1)]]
    return [receptive_field_size(list(layers)) for layers in stacks]


@probe("q3_test", repeat=4, optimizer=["sgd", "momentum", "adam"],
       what="largest_batch for random models and memories, optimizer {optimizer!r}")
def batch(observe, seed, optimizer):
    import random

    rng = random.Random(seed)
    states = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer]
    found = []
    for scale in (10**3, 10**6, 10**8, 10**9):
        n_params = rng.randint(1, scale)
        per_example = rng.randint(1, scale)
        fixed = 4 * n_params * (2 + states)
        b = rng.randint(1, 3000)
        for spare in (0, per_example - 1, rng.randint(0, per_example - 1),
                      (per_example - 1) // 2, per_example // 2 + 1):
            memory = fixed + b * per_example + min(spare, per_example - 1)
            found.append(largest_batch(n_params, per_example, memory, optimizer))
            found.append(largest_batch(n_params, per_example, memory - 1, optimizer))
        for memory in (fixed - 1, fixed, fixed + per_example - 1, rng.randint(0, fixed)):
            found.append(largest_batch(n_params, per_example, max(memory, 0), optimizer))
    return found


@probe("q3_test", repeat=2, what="largest_batch without its optimizer argument (the default)")
def batch_default(observe, seed):
    import random

    rng = random.Random(seed)
    found = []
    for _ in range(4):
        n_params, per_example = rng.randint(1, 10**7), rng.randint(1, 10**7)
        memory = 16 * n_params + rng.randint(1, 2000) * per_example + rng.randint(0, 10**7)
        found.append(largest_batch(n_params, per_example, memory))
        found.append(largest_batch(n_params, per_example, 16 * n_params - 1))
    return found


@probe("q4_test", repeat=5, n_layer=(1, 48), d_model=(1, 2048), vocab_size=(1, 100_000),
       context=(1, 4096), tie_weights=[True, False],
       what="gpt2_param_count({n_layer}, {d_model}, {vocab_size}, {context}, {tie_weights})")
def gpt2_count(observe, seed, n_layer, d_model, vocab_size, context, tie_weights):
    return gpt2_param_count(n_layer, d_model, vocab_size, context, tie_weights)


@probe("q4_test", repeat=2, n_layer=(1, 48), d_model=(1, 2048), vocab_size=(1, 100_000),
       context=(1, 4096),
       what="gpt2_param_count({n_layer}, {d_model}, {vocab_size}, {context}) (tie_weights "
            "left at its default) and on sizes of 1")
def gpt2_defaults(observe, seed, n_layer, d_model, vocab_size, context):
    return [gpt2_param_count(n_layer, d_model, vocab_size, context),
            gpt2_param_count(1, 1, 1, 1, True), gpt2_param_count(1, 1, 1, 1, False),
            gpt2_param_count(12, 768, 50257, 1024)]
