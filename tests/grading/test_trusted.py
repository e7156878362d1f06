"""The trusted verdict (``trusted``, ``observe``): comparisons made outside the learner's
kernel, probes read as text, models shipped as plain data and rebuilt from torch.nn only, and
the guarantee itself: with every in-kernel verdict forged to pass, a blank notebook scores 0."""

from __future__ import annotations

import json
import random
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from course_utils.grading import grade, modelspec, observe, trusted, verdict
from course_utils.grading import notebook_format as fmt
from course_utils.grading.assignment import load_assignments

ROOT = Path(__file__).resolve().parents[2]
NB01 = "01_layers_of_a_model.ipynb"


# ---------------------------------------------------------------------- comparison


@pytest.mark.parametrize(("want", "got", "equal"), [
    (3, 3, True), (3, 3.0, False), (3, True, False), (True, 1, False), (1.5, 1.5 + 1e-9, True),
    (1.5, 1.6, False), (float("nan"), float("nan"), True), ("a", "a", True), (None, 0, False),
    ([1, [2, 3]], [1, [2, 3]], True), ([1, 2], [2, 1], False), ({"a": 1}, {"a": 1, "_w": 9}, True),
    ({"a": 1}, {"b": 1}, False), ({"a": 1}, {"$error": "NameError: x"}, False),
])
def test_compare_is_exact_for_whole_numbers_and_close_for_floats(want, got, equal) -> None:
    assert (trusted.compare(want, got) is None) is equal


def test_compare_says_what_differs_in_fixed_words_never_a_value() -> None:
    want = observe.plain(torch.ones(2, 3))
    assert trusted.compare(want, observe.plain(torch.ones(3, 2))) == "a tensor of another shape"
    assert trusted.compare(want, observe.plain(torch.ones(2, 3) * 1.5)) == (
        "a tensor with other values")
    assert trusted.compare(1507, 1506) == "a different value"
    assert trusted.compare([1, 2], [1, 2, 3]) == "a list of another length"
    nan = observe.plain(torch.full((2, 3), float("nan")))
    assert trusted.compare(want, nan) and trusted.compare(nan, want)
    assert trusted.compare(nan, nan) is None
    # red team, round 2: a huge integer crashed the comparison; an infinite reference value
    # accepted any finite one
    assert trusted.compare(1.5, 10**400) == "a value the grader cannot compare"
    assert trusted.compare(want, {"$tensor": {"shape": [2, 3], "values": [10**400] * 6}})
    assert trusted.compare(float("inf"), 1e308) and trusted.compare(float("inf"),
                                                                     float("inf")) is None


def test_no_text_the_learner_chose_reaches_a_trusted_message() -> None:
    """Red team, round 2: an answer raised an error whose message was a hidden test in
    base64, and the trusted verdict showed it."""
    secret = "IyMjIEJFR0lOIEhJRERFTiBURVNUUwpjaGVja19zZXBhcmFibGU="

    class Reply:
        status, evalue = "ok", ""

        def __init__(self, value):
            self.expressions = {"r": repr(json.dumps(value))}

    one = trusted.Probe("count", ("observe", "seed"), "return 1")
    for sent in ({"$error": f"RuntimeError: {secret}"}, {"$error": f"{secret}: x"},
                 {"$tensor": {"shape": [len(secret)], "values": []}}, [secret], secret, 10**40):
        outcome = trusted.TrustedCheck()._one(
            lambda *a, value=sent, **k: Reply(value), _FixedKernel(1), one, {"seed": 1}, 5, [])
        assert outcome.status == "fail" and secret not in outcome.message, outcome
        assert not set(outcome.message.split()) & {str(len(secret)), "1" + "0" * 40}
    judge = trusted.Probe("judge", ("observe", "seed"), "return 1", judge=True,
                          reasons={"budget": "too big"})
    for said, shown in (("budget", "too big"), (secret, trusted._NOT_MET)):
        outcome = trusted.TrustedCheck()._one(
            lambda *a, **k: Reply(1), _FixedKernel(said), judge, {"seed": 1}, 5, [])
        assert outcome.message.endswith(shown), outcome


class _FixedKernel:
    """A reference kernel that always answers ``value``."""

    def __init__(self, value) -> None:
        self.value = value

    def run(self, *args, **kwargs):
        reply = type("Reply", (), {"status": "ok", "evalue": ""})()
        reply.expressions = {"r": repr(json.dumps(self.value))}
        return reply


def test_encoded_results_are_plain_json_and_refuse_live_objects() -> None:
    text = observe.encode({"t": torch.arange(3), "n": (1, 2)})
    assert json.loads(text) == {"t": {"$tensor": {"shape": [3], "dtype": "int64",
                                                  "values": [0, 1, 2]}}, "n": [1, 2]}
    assert "cannot compare" in observe.run_probe(lambda o: nn.Linear(1, 1))
    assert "too large" in observe.run_probe(lambda o: torch.zeros(observe.MAX_NUMBERS + 1))
    nested: list = []
    for _ in range(60):
        nested = [nested]
    assert "$error" in observe.run_probe(lambda o: nested)


# ---------------------------------------------------------------------- probe files


def test_probe_files_are_read_as_text_and_checked(tmp_path: Path) -> None:
    folder = tmp_path / trusted.PROBES_DIR
    folder.mkdir()
    (folder / "01_x.py").write_text(
        "raise SystemExit('never run')\n\n"
        "@probe('q1_test', n=(1, 9), flag=[True, False], repeat=2)\n"
        "def count(observe, seed, n, flag):\n    '''maintainer's note'''\n    return f(n)\n\n"
        "@count.reference\ndef count_ref(observe, seed, n, flag, learner):\n    return 1\n")
    probes = trusted.load_probes(tmp_path, "01_x.ipynb")
    (one,) = probes["q1_test"]
    assert one.params == ("observe", "seed", "n", "flag") and one.repeat == 2
    assert one.code == "return f(n)" and one.reference == "return 1"
    (folder / "02_y.py").write_text("@probe('q1_test', n=(1, 9))\ndef bad(observe, n):\n"
                                    "    return n\n")
    with pytest.raises(ValueError, match="observe, seed"):
        trusted.load_probes(tmp_path, "02_y.ipynb")


def test_every_question_of_every_exercise_has_probes() -> None:
    for name, assignment in load_assignments(ROOT / "solutions").items():
        tests = {fmt.grade_id(c) for c in assignment.solution.cells if fmt.is_grade(c)}
        assert set(assignment.probes) == tests, (
            f"{name}: probes for {sorted(assignment.probes)}, tests {sorted(tests)}")


def test_draws_cover_the_ranges() -> None:
    rng = random.Random(1)
    seen = {trusted.draw_values({"n": (1, 4)}, rng)["n"] for _ in range(200)}
    assert seen == {1, 2, 3, 4}


# ---------------------------------------------------------------------- models as data


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return torch.cat([torch.relu(self.a(x)), self.b(x) * self.scale], dim=1).flatten(1)


@pytest.mark.parametrize("factory", [
    lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3)),
    _Branchy,
], ids=["sequential", "custom-forward"])
def test_a_described_model_is_rebuilt_with_the_same_behaviour(factory) -> None:
    torch.manual_seed(0)
    model = factory()
    x = torch.randn(5, 1, 4, 4) if isinstance(model, nn.Sequential) else torch.randn(5, 3)
    description = json.loads(json.dumps(observe.describe(model)))
    rebuilt = observe.rebuild(description)
    model.eval(), rebuilt.eval()
    assert torch.allclose(model(x), rebuilt(x))
    # what it holds beside the weights counts too: batch norm's eps and momentum (2); the
    # forward's relu, mul, cat and flatten, and its flatten(1) and dim=1 (6)
    extra = modelspec.beside_weights(description)
    assert extra == (2 if isinstance(model, nn.Sequential) else 6)
    assert observe.state_size(rebuilt) == observe.state_size(model) + extra


class _Swish(nn.Module):  # a learner's own activation
    def forward(self, x):
        return x * torch.sigmoid(x)


class _Len(nn.Module):  # flattens with len(x), which torch.fx does not trace by default
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(x.view(len(x), -1))


class _Features(nn.Module):  # the course's own pattern: layers in an nn.Sequential attribute
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(2 * 2 * 2, 3)
        self.drop = 0.5

    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        return self.classifier(nn.functional.dropout(x, self.drop, training=self.training))


def test_correct_but_unusual_models_are_rebuilt_faithfully() -> None:
    """Review round: a Sequential attribute, a custom layer inside a Sequential, a layer used
    twice, functional dropout that follows the mode."""
    shared = nn.Linear(4, 4)
    for model, x in ((_Features(), torch.randn(6, 1, 4, 4)),
                     (nn.Sequential(nn.Linear(3, 4), _Swish(), nn.Linear(4, 2)), torch.randn(5, 3)),
                     (nn.Sequential(nn.Linear(3, 4), shared, nn.ReLU(), shared), torch.randn(5, 3)),
                     (_Len(), torch.randn(3, 2, 2))):
        rebuilt = observe.rebuild(json.loads(json.dumps(observe.describe(model))))
        for mode in (False, True):
            model.train(mode), rebuilt.train(mode)
            torch.manual_seed(0)
            want = model(x)
            torch.manual_seed(0)
            assert torch.allclose(want, rebuilt(x)), (type(model).__name__, mode)
        written = modelspec.beside_weights(observe.describe(model))
        assert written < 10  # a few operations and numbers beside the weights
        assert observe.state_size(rebuilt) == observe.state_size(model) + written
    rebuilt = observe.rebuild(observe.describe(nn.Sequential(shared, shared)))
    assert rebuilt[0] is rebuilt[1]


def test_whole_numbers_in_tensors_and_generators_read_as_plain_values() -> None:
    assert observe.plain(torch.tensor(7)) == 7 and observe.plain(iter_names()) == ["a", "b"]
    assert observe.plain(torch.tensor(1.5)) == {"$tensor": {"shape": [], "dtype": "float32",
                                                           "values": [1.5]}}


def iter_names():
    yield from ("a", "b")


def test_rebuild_runs_nothing_but_torch_nn_and_named_functions() -> None:
    description = observe.describe(nn.Sequential(nn.Linear(2, 2)))
    description["tree"]["class"] = "subprocess.Popen"
    with pytest.raises(ValueError, match="torch.nn layers only"):
        observe.rebuild(description)
    graph = observe.describe(_Branchy())
    node = next(n for n in graph["graph"] if n["op"] == "call_function")
    for target in ("torch.save", "builtins.exec", "torch.PyTorchFileWriter", "torch.tensor",
                   "torch.import_ir_module", "operator.attrgetter", "operator.call"):
        node["target"] = target
        with pytest.raises(ValueError, match="does not rebuild calls to a function it does"):
            observe.rebuild(graph)


def test_numbers_outside_parameters_and_buffers_are_refused() -> None:
    """Red team, round 2: weights carried as graph constants escaped the budget."""
    description = observe.describe(_Branchy())
    node = next(n for n in description["graph"] if n["op"] == "call_function")
    node["args"] = {"$seq": [node["args"], list(range(300))], "tuple": True}
    with pytest.raises(ValueError, match="outside its parameters and buffers"):
        observe.rebuild(description)
    layers = observe.describe(nn.Sequential(nn.Linear(2, 2)))
    layers["tree"]["children"]["0"]["attrs"]["hidden"] = [list(range(100)), False]
    with pytest.raises(ValueError, match="more settings"):
        observe.rebuild(layers)
    graph = observe.describe(_Branchy())
    node = next(n for n in graph["graph"] if n["op"] == "get_attr")
    node["target"] = "a.in_features"
    with pytest.raises(ValueError, match="other than a parameter or a buffer"):
        observe.rebuild(graph)


def test_drawn_weights_ignore_the_learners_and_the_registration_order() -> None:
    x = observe.randn(3, 4, 3)
    reference = observe.behave(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)), x, 7)

    class Reordered(nn.Module):  # registers its layers in the other order
        def __init__(self) -> None:
            super().__init__()
            self.second, self.first = nn.Linear(5, 2), nn.Linear(3, 5)

        def forward(self, x):
            return self.second(torch.relu(self.first(x)))

    class Zeros(nn.Sequential):  # red team: zero weights, and a forward that ignores them
        def __init__(self) -> None:
            super().__init__(nn.Linear(3, 5), nn.Linear(5, 2))
            for p in self.parameters():
                nn.init.zeros_(p)

        def forward(self, x):
            return torch.zeros(len(x), 2)

    def sent(model):
        return json.loads(observe.encode(observe.behave(model, x, 7)))

    want = json.loads(observe.encode(reference))
    assert trusted.compare(want, sent(Reordered())) is None
    assert trusted.compare(want, sent(Zeros())) == "a tensor with other values"


def test_text_pasted_into_the_rebuilt_forward_is_refused() -> None:
    """Red team, round 3: an input named like code ran it when fx compiled the graph."""
    description = observe.describe(_Branchy())
    graph = description["graph"]
    graph[0]["target"] = "x, _=(print('owned'), 0)"
    with pytest.raises(ValueError, match="plain identifier"):
        observe.rebuild(description)
    graph[0]["target"] = "x"
    node = next(n for n in graph if n["op"] == "call_function")
    node["kwargs"] = {"$map": {"dim=1, out=print('owned')": 1}}
    with pytest.raises(ValueError, match="plain identifier"):
        observe.rebuild(description)


def test_weights_hidden_as_fractions_or_text_count_towards_the_budget() -> None:
    """Red team, round 3: 65 weights rode through the graph as float("...") calls."""
    model = _Branchy()
    plain = observe.state_size(observe.rebuild(observe.describe(model)))
    assert plain == observe.state_size(model) + 6  # four operations, flatten(1), dim=1
    description = observe.describe(model)
    node = next(n for n in description["graph"] if n["op"] == "call_function")
    node["target"] = "builtins.float"
    with pytest.raises(ValueError, match="does not rebuild calls"):
        observe.rebuild(description)
    description = observe.describe(model)
    node = next(n for n in description["graph"] if n["op"] == "call_function"
                and n["target"] == "operator.mul")
    node["args"] = {"$seq": [node["args"]["$seq"][0], 0.125], "tuple": True}
    assert observe.state_size(observe.rebuild(description)) == plain + 1
    layers = observe.describe(nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(0.3)))
    assert observe.state_size(observe.rebuild(layers)) == 6 + 1
    # red team, round 4: weights as whole numbers, scaled down in the forward, or packed into
    # one huge integer and unpacked with % and //
    description = observe.describe(model)
    node = next(n for n in description["graph"] if n["op"] == "call_function"
                and n["target"] == "operator.mul")
    node["args"] = {"$seq": [node["args"]["$seq"][0], 1234], "tuple": True}
    assert observe.state_size(observe.rebuild(description)) == plain + 1
    node["args"] = {"$seq": [node["args"]["$seq"][0], 10**288], "tuple": True}
    with pytest.raises(ValueError, match="too large"):
        observe.rebuild(description)


class _Packed(nn.Module):  # red team, round 5: float16 weights packed into a float64 buffer
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("blob", torch.zeros(4, dtype=torch.float64))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x * self.blob.view(torch.float16).float().sum() + self.bias


def test_operations_and_truth_values_beside_the_layers_count() -> None:
    """Red team, round 6: weights built from x.dim() and True by doubling, writing no number."""
    description = observe.describe(_Branchy())
    base = modelspec.beside_weights(description)
    description["graph"].insert(-1, {"op": "call_function", "name": "extra",
                                     "target": "operator.add", "kwargs": {"$map": {}},
                                     "args": {"$seq": [True, True], "tuple": True}})
    assert modelspec.beside_weights(description) == base + 3


def test_weights_packed_into_bits_are_refused() -> None:
    with pytest.raises(ValueError, match="buffers other than a batch norm"):
        observe.rebuild(observe.describe(_Packed()))
    description = observe.describe(_Packed())
    description["tree"]["buffers"] = {}
    description["tree"]["params"]["blob"] = description["tree"]["params"]["bias"]
    with pytest.raises(ValueError, match="bits as another dtype|a graph node that reads"):
        observe.rebuild(description)
    for target in ("operator.mod", "operator.floordiv", "torch.floor", "torch.round"):
        graph = observe.describe(_Branchy())
        next(n for n in graph["graph"] if n["op"] == "call_function")["target"] = target
        with pytest.raises(ValueError, match="does not rebuild calls"):
            observe.rebuild(graph)


def test_a_graph_that_reaches_for_eval_is_not_rebuilt() -> None:
    import operator

    import torch.fx

    class Evil(nn.Module):  # red team, round 4: fx nodes added while tracing
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

        def forward(self, x):
            if isinstance(x, torch.fx.Proxy):
                t, y = x.tracer, self.conv(x)
                g = t.create_proxy("call_function", operator.attrgetter,
                                   ("__class__.__repr__.__globals__",), {})
                return t.create_proxy("call_function", operator.call, (g, y), {})
            return self.conv(x)

    description = json.loads(json.dumps(observe.describe(Evil())))
    with pytest.raises(ValueError, match="does not rebuild calls to a function it does not"):
        observe.rebuild(description)
    with pytest.raises(ValueError, match="attribute '__class__'"):
        modelspec._attribute(torch.zeros(1), "__class__")
    with pytest.raises(ValueError, match="key '__builtins__'"):
        modelspec._item({"__builtins__": 1}, "__builtins__")


# ---------------------------------------------------------------------- the guarantee


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Exercise 01 graded with every in-kernel verdict forged to pass and the audit blind:
    what a learner who fully controls their kernel's replies could reach."""
    assignment = load_assignments(ROOT / "solutions")[NB01]
    real_score, real_check = verdict.score, verdict.Audit.check_test

    def forged_score(cell, run, block, hidden, hidden_lines):
        return verdict.record(cell, "pass", "", run.seconds)

    base = tmp_path_factory.mktemp("forged")
    found = {}
    verdict.score, verdict.Audit.check_test = forged_score, lambda *a, **k: None
    try:
        for name, folder in (("blank", "exercises"), ("solution", "solutions")):
            path = base / name / NB01
            path.parent.mkdir()
            path.write_bytes((ROOT / folder / NB01).read_bytes())
            found[name] = grade.grade_notebook(path, assignment, name, sandboxed=False)
        wrong = nbformat.read(ROOT / "solutions" / NB01, as_version=4)
        for cell in wrong.cells:
            if fmt.grade_id(cell) == "q1_answer":  # right on the visible and hidden tests only
                cell.source = (
                    "KNOWN = {s: (s[0] + 1) * s[1] + (s[1] + 1) * s[1] + (s[1] + 1) * s[2]\n"
                    "         for s in [(6, 9, 2), (5, 12, 7), (10, 32, 3), (3, 4, 11)]}\n\n"
                    "def mlp_param_count(n_in=10, hidden=32, n_out=3):\n"
                    "    return KNOWN.get((n_in, hidden, n_out), 0)\n")
    finally:
        verdict.score, verdict.Audit.check_test = real_score, real_check
    path = base / "wrong" / NB01  # graded for real: it passes every committed test
    path.parent.mkdir()
    nbformat.write(wrong, path)
    found["memorised"] = grade.grade_notebook(path, assignment, "memorised", sandboxed=False)
    for cell in wrong.cells:  # round 3: the answer returns the test's own `expected` local
        if fmt.grade_id(cell) == "q1_answer":
            cell.source = ("import sys\n\n"
                           "def mlp_param_count(n_in=10, hidden=32, n_out=3):\n"
                           "    frame = sys._getframe(1)\n"
                           "    while frame is not None:\n"
                           "        if 'expected' in frame.f_locals:\n"
                           "            return frame.f_locals['expected']\n"
                           "        frame = frame.f_back\n"
                           "    return 0\n")
    path = base / "frame" / NB01
    path.parent.mkdir()
    nbformat.write(wrong, path)
    found["frame"] = grade.grade_notebook(path, assignment, "frame", sandboxed=False)
    return found


def test_a_blank_notebook_scores_zero_whatever_its_kernel_reports(forged: dict) -> None:
    blank = forged["blank"]
    assert blank.score == 0 and len(blank.tests) == 5
    for test in blank.tests:
        assert test.status == "fail" and test.trusted == "fail", test
        assert test.message.startswith("checked outside your kernel"), test.message


def test_answers_memorised_from_the_tests_lose_the_question(forged: dict) -> None:
    q1 = next(t for t in forged["memorised"].tests if t.grade_id == "q1_test")
    assert q1.status == "fail" and q1.points == 0 and q1.trusted == "fail", q1
    assert q1.message.startswith("checked outside your kernel"), q1.message


def test_an_answer_that_returns_the_tests_own_expected_value_loses_the_question(
        forged: dict) -> None:
    q1 = next(t for t in forged["frame"].tests if t.grade_id == "q1_test")
    assert q1.points == 0 and q1.trusted == "fail", q1


def test_the_solution_passes_the_trusted_verdict(forged: dict) -> None:
    solution = forged["solution"]
    assert solution.score == solution.max_score
    assert {t.trusted for t in solution.tests} == {"pass"}
