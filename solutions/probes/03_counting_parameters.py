"""Trusted probes of exercise 03 (see ``course_utils.grading.trusted``).

Each body runs in the learner's kernel and in a kernel holding only the solution, with the
values the grader draws; the grader compares the two results itself. Names such as
``cnn_param_count`` are the notebook's.
"""
# ruff: noqa: F821 (the answers' names live in the kernels, not here)

from course_utils.grading.trusted import probe


@probe("q1_test", c_in=(1, 64), c1=(1, 128), c2=(1, 128), h4=(1, 64), w4=(1, 64),
       classes=(1, 200), what="cnn_param_count({c_in}, {c1}, {c2}, 4·{h4}, 4·{w4}, {classes})")
def cnn_count(observe, seed, c_in, c1, c2, h4, w4, classes):
    return cnn_param_count(c_in, c1, c2, 4 * h4, 4 * w4, classes)


@probe("q1_test", repeat=2, what="cnn_param_count on non-square images and single channels")
def cnn_count_edges(observe, seed):
    import random

    rng = random.Random(seed)
    cases = []
    for _ in range(4):
        h4, w4 = rng.sample(range(1, 40), 2)  # never square
        cases.append((rng.choice([1, rng.randint(2, 16)]), rng.choice([1, rng.randint(2, 32)]),
                      rng.choice([1, rng.randint(2, 32)]), 4 * h4, 4 * w4,
                      rng.choice([1, rng.randint(2, 50)])))
    return [cnn_param_count(*case) for case in cases]


@probe("q1_test", repeat=1, what="cnn_param_count() with the question's sizes")
def cnn_count_defaults(observe, seed):
    return cnn_param_count()


@probe("q2_test", input_size=(1, 300), hidden_size=(1, 300), num_layers=(1, 5),
       bidirectional=[True, False],
       what="lstm_param_count({input_size}, {hidden_size}, {num_layers}, {bidirectional})")
def lstm_count(observe, seed, input_size, hidden_size, num_layers, bidirectional):
    return lstm_param_count(input_size, hidden_size, num_layers, bidirectional)


@probe("q2_test", input_size=(1, 300), hidden_size=(1, 300), num_layers=(2, 5),
       bidirectional=[True, False],
       what="lstm_param_count({input_size}, {hidden_size}, {num_layers}, {bidirectional})")
def lstm_count_stacked(observe, seed, input_size, hidden_size, num_layers, bidirectional):
    return lstm_param_count(input_size, hidden_size, num_layers, bidirectional)


@probe("q2_test", input_size=(1, 300), hidden_size=(1, 300), num_layers=(2, 5),
       what="lstm_param_count({input_size}, {hidden_size}, {num_layers}, bidirectional=True)")
def lstm_count_bidirectional(observe, seed, input_size, hidden_size, num_layers):
    return lstm_param_count(input_size, hidden_size, num_layers, bidirectional=True)


@probe("q2_test", input_size=(1, 300), hidden_size=(1, 300),
       what="lstm_param_count({input_size}, {hidden_size}) with the default layers and "
            "direction")
def lstm_count_defaults(observe, seed, input_size, hidden_size):
    return lstm_param_count(input_size, hidden_size)


@probe("q3_test", inputs=(1, 1000), outputs=(1, 200), hidden_layers=(1, 6), width=(1, 1500),
       what="widest_mlp({inputs}, {outputs}, {hidden_layers}, budget) for budgets at and "
            "around the training bytes of width {width}")
def widest(observe, seed, inputs, outputs, hidden_layers, width):
    import random

    def train_bytes(w):
        return 16 * ((inputs + 1) * w + (hidden_layers - 1) * (w + 1) * w + (w + 1) * outputs)

    rng = random.Random(seed)
    low, high = train_bytes(width), train_bytes(width + 1)
    budgets = [low, low + 1, high - 1, high, rng.randrange(low, high)]
    return [widest_mlp(inputs, outputs, hidden_layers, budget) for budget in budgets]


@probe("q3_test", repeat=2, what="widest_mlp on small networks and budgets near a width's bytes")
def widest_small(observe, seed):
    import random

    rng = random.Random(seed)
    answers = []
    for _ in range(6):
        inputs, outputs = rng.randint(1, 40), rng.randint(1, 40)
        hidden_layers, width = rng.randint(1, 4), rng.randint(1, 30)
        params = ((inputs + 1) * width + (hidden_layers - 1) * (width + 1) * width
                  + (width + 1) * outputs)
        budget = 16 * params + rng.choice([0, 1, 15, rng.randint(0, 16 * width)])
        answers.append(widest_mlp(inputs, outputs, hidden_layers, budget))
    return answers


@probe("q4_test", vocabulary=(1, 5000), dim=(1, 500),
       what="tied_param_count({vocabulary}, {dim})")
def tied_count(observe, seed, vocabulary, dim):
    return tied_param_count(vocabulary, dim)


@probe("q4_test", repeat=1, what="tied_param_count() with the question's sizes")
def tied_count_defaults(observe, seed):
    return tied_param_count()


@probe("q5_test", input_size=(1, 300), hidden_size=(1, 300), num_layers=(1, 5),
       bidirectional=[True, False],
       what="gru_param_count({input_size}, {hidden_size}, {num_layers}, {bidirectional})")
def gru_count(observe, seed, input_size, hidden_size, num_layers, bidirectional):
    return gru_param_count(input_size, hidden_size, num_layers, bidirectional)


@probe("q5_test", input_size=(1, 300), hidden_size=(1, 300), num_layers=(2, 5),
       what="gru_param_count({input_size}, {hidden_size}, {num_layers}, bidirectional=True)")
def gru_count_bidirectional(observe, seed, input_size, hidden_size, num_layers):
    return gru_param_count(input_size, hidden_size, num_layers, bidirectional=True)


@probe("q5_test", input_size=(1, 300), hidden_size=(1, 300),
       what="gru_param_count({input_size}, {hidden_size}) with the default layers and "
            "direction")
def gru_count_defaults(observe, seed, input_size, hidden_size):
    return gru_param_count(input_size, hidden_size)
