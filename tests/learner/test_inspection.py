"""Inspection: counts, tables, shapes and FLOPs — and that the model is never touched."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from course_utils import count_params, flops, layer_table, param_table, trace_shapes
from course_utils.inspection import ForwardPassError, LazyModuleError, ShapeMismatchError
from tests.fixtures.models import SequenceClassifier, SmallCNN, mlp


def test_counts_of_the_lesson_models() -> None:
    assert count_params(mlp()) == 325
    assert count_params(SmallCNN()) == 20_778
    assert count_params(SequenceClassifier()) == 5_000 + 40_800 + 1_020


def test_tied_weights_are_counted_once() -> None:
    embedding = nn.Embedding(100, 16)
    head = nn.Linear(16, 100, bias=False)
    head.weight = embedding.weight
    model = nn.ModuleDict({"embedding": embedding, "head": head})
    naive = sum(p.numel() for m in model.values() for p in m.parameters())
    assert naive == 3_200
    assert count_params(model) == 1_600
    assert param_table(model).total == 1_600


def test_trainable_only() -> None:
    model = mlp()
    model[0].requires_grad_(False)
    assert count_params(model, trainable_only=True) == 105
    assert count_params(model) == 325
    table = param_table(model)
    assert table.trainable == 105 and "105 trainable" in str(table)


def test_lazy_layer_error_says_what_to_do() -> None:
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))
    for fn in (count_params, param_table, lambda m: layer_table(m, (1, 8))):
        with pytest.raises(LazyModuleError, match=r"layer '1' \(LazyLinear\) is lazy(?s:.)*dry forward pass"):
            fn(model)
    model(torch.zeros(1, 4, 4))
    assert count_params(model) == 16 * 10 + 10


def test_layer_table_rows_shapes_and_total() -> None:
    table = layer_table(SmallCNN(), (1, 3, 28, 28))
    rows = {r.name: r for r in table.rows}
    assert rows["features.0"].output_shape == "[1, 16, 28, 28]"
    assert rows["flatten"].output_shape == "[1, 1568]"
    assert rows["classifier"].params == 15_690
    assert rows["features"].params == 0  # its children are listed: the column sums to the total
    assert sum(r.params for r in table.rows) == 20_778
    assert table.total_params == 20_778
    text = str(table)
    assert "Total params: 20,778" in text and "classifier (Linear)" in text
    assert "<table>" in table._repr_html_() and "20,778" in table._repr_html_()


def test_layer_table_depth_limits_rows() -> None:
    table = layer_table(SmallCNN(), (1, 3, 28, 28), depth=1)
    assert [r.name for r in table.rows] == ["features", "flatten", "classifier"]
    assert table.rows[0].params == 448 + 4_640  # cut at this depth: it holds its children's


def test_layer_table_handles_lstm_and_token_ids() -> None:
    table = layer_table(SequenceClassifier(), (4, 12), dtype=torch.long)
    assert [r.params for r in table.rows] == [5_000, 40_800, 1_020]
    same = layer_table(SequenceClassifier(), input_data=torch.randint(0, 100, (4, 12)))
    assert [r.output_shape for r in same.rows] == [r.output_shape for r in table.rows]


def test_wrong_image_size_names_the_layer_and_shapes() -> None:
    with pytest.raises(ShapeMismatchError) as info:
        layer_table(SmallCNN(), (1, 3, 32, 32))
    message = str(info.value)
    assert "layer 'classifier' (Linear, in_features=1568) received 2048 features" in message
    assert "1×3×32×32" in message and "32×8×8 = 2048" in message and "LazyLinear(10)" in message
    assert info.value.module_name == "classifier"


def test_wrong_channel_count_names_the_conv() -> None:
    with pytest.raises(ShapeMismatchError, match=r"'features.0' \(Conv2d, in_channels=3\).*1 channels"):
        trace_shapes(SmallCNN(), torch.zeros(1, 1, 28, 28))


def test_other_failures_still_name_the_module() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(4, 4), Explode())

        def forward(self, x):
            return self.inner(x)

    class Explode(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    with pytest.raises(ForwardPassError, match=r"(?s)layer .inner.1. \(Explode\).*boom"):
        layer_table(Broken(), (2, 4))


def test_inspection_never_touches_the_model() -> None:
    model = nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layer_table(model, (4, 6))
    trace_shapes(model, torch.randn(4, 6))
    flops(model, torch.randn(4, 6))
    with pytest.raises(ShapeMismatchError):
        layer_table(model, (4, 7))  # fails: the hooks must still be removed
    assert model.training and all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.device.type == "cpu" for p in model.parameters())
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_trace_shapes_lists_leaves_in_order() -> None:
    rows = trace_shapes(SmallCNN(), torch.zeros(2, 3, 28, 28)).rows
    assert [r.name for r in rows][-2:] == ["flatten", "classifier"]
    assert rows[0].input_shape == "[2, 3, 28, 28]" and rows[-1].output_shape == "[2, 10]"
    with pytest.raises(ValueError, match="at least one example input"):
        trace_shapes(SmallCNN())


def test_flops_are_twice_the_macs() -> None:
    assert flops(nn.Linear(10, 20), torch.zeros(3, 10)) == 2 * 3 * 10 * 20
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert flops(conv, torch.zeros(1, 3, 32, 32)) == 2 * (8 * 3 * 9) * 32 * 32


def test_flops_count_an_lstm_built_on_the_cpu() -> None:
    model = nn.LSTM(50, 50, num_layers=2, batch_first=True)
    x = torch.zeros(4, 12, 50)
    # per step, layer and example: 4H(I + H) multiply-accumulates
    assert flops(model, x) == 2 * (4 * 50 * (50 + 50)) * 12 * 4 * 2
    per_module = flops(SequenceClassifier(), torch.zeros(4, 12, dtype=torch.long), by_module=True)
    assert per_module["fc"] == 2 * 4 * 50 * 20 and per_module["lstm"] > 0


def test_a_billion_parameter_model_is_sized_in_a_second_on_meta() -> None:
    start = time.perf_counter()
    with torch.device("meta"):
        big = nn.Sequential(*[nn.Linear(8192, 8192) for _ in range(60)])
    assert count_params(big) == 60 * (8192 * 8192 + 8192)
    table = layer_table(big, (1, 8192))
    total_flops = flops(big, torch.zeros(1, 8192))
    assert table.total_params == count_params(big) and total_flops == 2 * 60 * 8192 * 8192
    assert time.perf_counter() - start < 5  # ~0.1 s here; generous for slow CI


def test_layer_table_needs_exactly_one_input_description() -> None:
    with pytest.raises(ValueError, match="exactly one of input_size"):
        layer_table(mlp())


def test_widths_that_do_not_chain_name_both_layers() -> None:
    model = nn.Sequential(nn.Linear(10, 18), nn.ReLU(), nn.Linear(20, 5))
    with pytest.raises(ShapeMismatchError) as info:
        trace_shapes(model, torch.zeros(4, 10))
    message = str(info.value)
    assert "layer '2' (Linear, in_features=20) received 18 features" in message
    assert "'0' (Linear, out_features=18)" in message and "nn.Linear(18, 5)" in message


def test_layer_table_is_a_sequence_of_its_rows() -> None:
    # regression: LayerTable was not iterable, not indexable and had no len()
    table = layer_table(mlp(), (10,))
    assert len(table) == len(table.rows) == 3  # Linear, ReLU, Linear
    assert [row.name for row in table] == [row.name for row in table.rows]
    assert table[1] is table.rows[1] and table[-1].type == "Linear"
    assert table[1:] == table.rows[1:]
    assert sum(row.params for row in table) == table.total_params == 325
    with pytest.raises(IndexError):
        table[len(table)]
    assert "Total params" in str(table) and "<table>" in table._repr_html_()


class NoMetaKernel(nn.Module):
    """A layer whose operation, like a few rare ones in PyTorch, has no meta implementation."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_meta:
            raise NotImplementedError("Could not run 'aten::rare_op' with arguments from the 'Meta' backend.")
        return self.fc(x)


def test_flops_and_layer_table_fall_back_to_a_real_copy_without_a_meta_kernel() -> None:
    model = NoMetaKernel()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert flops(model, torch.zeros(2, 4)) == 2 * 2 * 4 * 3
    assert flops(model, torch.zeros(2, 4), by_module=True) == {"": 48, "fc": 48}
    assert [(r.name, r.output_shape) for r in layer_table(model, (2, 4))] == [("fc", "[2, 3]")]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_flops_names_the_failing_layer_like_layer_table() -> None:
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(5, 2))
    with pytest.raises(ShapeMismatchError, match="(?s)layer '1'.*the widths do not chain"):
        flops(model, torch.zeros(1, 8))


def test_old_import_paths_still_work() -> None:
    from course_utils import _meta, inspection, memory

    assert inspection.param_bytes is memory.param_bytes
    assert inspection.training_bytes is memory.training_bytes
    assert inspection._check_initialised is _meta.check_initialised
    assert inspection._meta_replica is _meta.meta_replica
    assert inspection._to_meta is _meta.to_meta
