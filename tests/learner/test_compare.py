"""compare_models: exact sizes and MACs, timing that leaves models alone, history columns."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from course_utils import ComparisonTable, compare_models


def small_cnn() -> nn.Sequential:
    # conv 1->4 (3x3, pad 1) on 1x6x6, ReLU, flatten, linear 4*6*6 -> 3
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )


def history(val_acc: list[float], seconds: float) -> SimpleNamespace:
    return SimpleNamespace(val_acc=val_acc, seconds=seconds)


def test_params_and_macs_match_hand_computation() -> None:
    mlp = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    table = compare_models({"mlp": mlp}, (10,), repeats=0)
    row = table["mlp"]
    assert row.params == (10 * 20 + 20) + (20 * 5 + 5) == 325
    assert row.macs == 10 * 20 + 20 * 5
    assert row.flops == 2 * row.macs

    cnn = compare_models({"cnn": small_cnn()}, (1, 6, 6), repeats=0)["cnn"]
    conv_params, head_params = 4 * 1 * 3 * 3 + 4, 144 * 3 + 3
    assert cnn.params == conv_params + head_params == 475
    conv_macs = 4 * 1 * 3 * 3 * 6 * 6  # out channels x in channels x kernel x output pixels
    assert cnn.macs == conv_macs + 144 * 3
    assert cnn.flops == 2 * cnn.macs


def test_macs_are_per_example_whatever_the_batch_size() -> None:
    one = compare_models({"m": small_cnn()}, (1, 6, 6), repeats=0, batch_size=1)["m"].macs
    many = compare_models({"m": small_cnn()}, (1, 6, 6), repeats=0, batch_size=32)["m"].macs
    assert one == many


def test_largest_layer_and_its_share() -> None:
    row = compare_models({"cnn": small_cnn()}, (1, 6, 6), repeats=0)["cnn"]
    assert (row.largest_layer, row.largest_layer_type) == ("3", "Linear")
    assert row.largest_share == pytest.approx(435 / 475)
    whole = compare_models({"lin": nn.Linear(3, 2)}, (3,), repeats=0)["lin"]
    assert (whole.largest_layer, whole.largest_share) == ("", 1.0)
    assert "Linear" in str(compare_models({"lin": nn.Linear(3, 2)}, (3,), repeats=0))


def test_timing_is_positive_and_leaves_the_model_unchanged() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.BatchNorm1d(16), nn.Linear(16, 2))
    model.train()
    model[2].eval()  # a mixed state must come back exactly as it was
    before = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    rng_state = torch.get_rng_state()

    row = compare_models({"m": model}, (8,), batch_size=16, repeats=3, warmup=1)["m"]

    assert row.ms_per_batch is not None and row.ms_per_batch > 0
    assert [m.training for m in model.modules()] == modes
    for key, value in model.state_dict().items():  # BatchNorm running stats included
        assert torch.equal(value, before[key]), key
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng_state), "the global RNG was consumed"


def test_repeats_zero_skips_timing_and_its_column() -> None:
    table = compare_models({"m": small_cnn()}, (1, 6, 6), repeats=0)
    assert table["m"].ms_per_batch is None
    assert "ms/batch" not in str(table)
    assert "ms/batch" in str(compare_models({"m": small_cnn()}, (1, 6, 6), repeats=1, warmup=0))


def test_a_model_on_meta_is_sized_but_not_timed() -> None:
    with torch.device("meta"):
        big = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10))
    row = compare_models({"big": big}, (4096,))["big"]
    assert row.params == 4096 * 4097 + 10 * 4097 and row.macs == 4096 * 4096 + 4096 * 10
    assert row.ms_per_batch is None


def test_history_columns_mean_std_and_time() -> None:
    runs = [history([0.5, 0.8], 2.0), history([0.6, 0.9], 4.0), history([0.7, 1.0], 6.0)]
    table = compare_models(
        {"a": small_cnn(), "b": small_cnn()}, (1, 6, 6), repeats=0,
        histories={"a": runs, "b": history([0.4, 0.75], 1.5)},
    )
    a, b = table["a"], table["b"]
    assert a.runs == 3 and a.val_acc_mean == pytest.approx(0.9)  # final epochs: .8 .9 1.0
    assert a.val_acc_std == pytest.approx(0.1)  # sample standard deviation
    assert a.train_seconds == pytest.approx(4.0)
    assert (b.runs, b.val_acc_mean, b.val_acc_std, b.train_seconds) == (1, 0.75, None, 1.5)
    text = str(table)
    assert "0.900 ± 0.100" in text and "val acc" in text and "train s" in text


def test_model_without_history_shows_a_dash() -> None:
    table = compare_models({"a": small_cnn(), "b": small_cnn()}, (1, 6, 6), repeats=0,
                           histories={"a": history([0.5], 1.0)})
    assert table["b"].val_acc_mean is None
    assert str(table).splitlines()[-1].split()[-1] == "–"


def test_str_html_and_dict_name_every_model() -> None:
    models = {"narrow net": small_cnn(), "wide<net>": nn.Sequential(nn.Flatten(),
                                                                   nn.Linear(36, 1000))}
    table = compare_models(models, (1, 6, 6), repeats=1, warmup=0)
    text, page = str(table), table._repr_html_()
    assert repr(table) == text
    for name in models:
        assert name in text
    assert "narrow net" in page and "wide&lt;net&gt;" in page and "<table>" in page
    assert "36,000" in text  # thousands separators (36*1000 MACs)
    lines = text.splitlines()
    assert len({len(line) for line in lines[:2]}) == 1, "header and rule have the same width"
    assert set(table.to_dict()) == set(models)
    assert table.to_dict()["narrow net"]["params"] == 475


def test_select_keeps_only_machine_independent_columns() -> None:
    table = compare_models({"m": small_cnn()}, (1, 6, 6), repeats=2, warmup=0,
                           histories={"m": history([0.5], 1.0)})
    sizes = table.select()
    assert isinstance(sizes, ComparisonTable)
    text = str(sizes) + sizes._repr_html_()
    for hidden in ("ms/batch", "val acc", "train s"):
        assert hidden not in text
    assert "MACs" in text and "475" in text
    assert table.to_string(columns=["params"]).splitlines()[0].split() == ["model", "params"]
    with pytest.raises(ValueError, match="unknown column"):
        table.select("accuracy")


def test_bad_inputs_get_clear_messages() -> None:
    with pytest.raises(ValueError, match="non-empty dict"):
        compare_models({}, (4,))
    with pytest.raises(TypeError, match=r"models\['x'\] is a int, not an nn.Module"):
        compare_models({"x": 3}, (4,))  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="unknown model"):
        compare_models({"a": nn.Linear(4, 2)}, (4,), histories={"b": history([0.5], 1.0)})
    with pytest.raises(ValueError, match="no validation accuracy"):
        compare_models({"a": nn.Linear(4, 2)}, (4,), histories={"a": history([], 1.0)})
    with pytest.raises(ValueError, match=r"'cnn' failed on an input of shape \(1, 1, 6, 6, 6\)"):
        compare_models({"cnn": small_cnn()}, (1, 6, 6, 6), repeats=0)
    with pytest.raises(ValueError, match="never moves a model"):
        compare_models({"a": nn.Linear(4, 2)}, (4,), device="meta")


def test_a_fresh_model_with_batchnorm1d_is_counted_in_eval_mode_and_keeps_its_modes() -> None:
    # regression: FLOPs were counted on a batch of one in train mode, which BatchNorm1d refuses
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.5))
    model[2].eval()  # a mixed state, restored module by module
    row = compare_models({"m": model}, (8,), repeats=1, warmup=0)["m"]
    assert row.params == (8 * 8 + 8) + 2 * 8 and row.macs >= 8 * 8  # counted, not crashed
    assert [m.training for m in model.modules()] == [True, True, True, False]


def test_ms_per_image_is_the_batch_time_divided_by_the_batch_size() -> None:
    row = compare_models({"m": small_cnn()}, (1, 6, 6), repeats=2, warmup=0, batch_size=16)["m"]
    assert row.ms_per_image == pytest.approx(row.ms_per_batch / 16)
    assert "ms/image" in str(compare_models({"m": small_cnn()}, (1, 6, 6), repeats=1, warmup=0))
