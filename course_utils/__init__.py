"""Helpers for the course *How to size a neural network*.

Import what you need from the top level::

    >>> from course_utils import count_params, linear_params
    >>> linear_params(10, 20)
    220

Names are loaded lazily from the submodule that owns them, so ``import course_utils``
is cheap and has no side effects (no torch, matplotlib or widget import until a name
that needs it is used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# submodule -> the public names it owns. The rule, checked by tests/content/test_environment.py:
# _PUBLIC[module] == module.__all__ minus module._KEPT_FOR_OLD_IMPORTS (names a module still
# re-exports only so that old imports keep working; their owner lists them here). A name a
# private module (_meta, _explain, _optim) defines is owned by the public module that
# re-exports it (LazyModuleError: inspection; add_to_optimizer: growth).
_PUBLIC: dict[str, tuple[str, ...]] = {
    "inspection": (
        "count_params", "param_table", "layer_table", "trace_shapes", "flops",
        "LayerTable", "LayerRow", "ParamTable", "ForwardPassError", "ShapeMismatchError",
        "LazyModuleError",
    ),
    "formulas": (
        "linear_params", "conv2d_params", "lstm_params", "conv2d_output_size",
        "batchnorm_params", "embedding_params", "mlp_params",
    ),
    "repro": ("set_seed", "get_device"),
    "doctor": ("doctor", "Check"),
    "data": (
        "make_linear_task", "make_moons_task", "train_val_split", "make_loaders",
        "load_digits_tensors", "digits_loaders", "DigitsSplits", "DIGITS_SIZES",
    ),
    "training": (
        "fit", "History", "evaluate", "LossShapeError", "TrainingDivergedError",
        "grad_norms_per_layer", "check_loss_inputs", "summarise_runs", "RunsTable", "RunStats",
    ),
    "plots": (
        "plot_learning_curves", "plot_decision_boundary", "plot_grad_norms",
        "plot_params_vs_metric", "plot_feature_maps", "plot_params_per_layer",
    ),
    "diagrams": ("draw_network", "network_widths"),
    "widgets": ("param_explorer", "explorer_summary", "ExplorerSummary"),
    "style": ("PALETTE", "format_bytes"),
    "compare": ("compare_models", "ComparisonTable", "ComparisonRow", "median_forward_ms"),
    "growth": (
        "net2deeper", "net2wider", "add_to_optimizer", "replace_in_optimizer", "GrowingMLP",
        "Growth", "IDEMPOTENT_ACTIVATIONS", "Widened", "Residual", "net2deeper_residual",
    ),
    "memory": (
        "param_bytes", "training_bytes", "activation_bytes", "training_memory", "TrainingMemory",
        "plot_training_memory",
    ),
    "receptive": ("receptive_field", "ReceptiveField", "LayerField"),
    "zoo": (
        "resnet", "mobilenet_v2", "vgg16", "gpt2", "ResNet", "MobileNetV2", "VGG", "GPT2",
        "BasicBlock", "Bottleneck", "InvertedResidual", "RESNET_LAYERS",
    ),
    "lessons": ("lesson_map", "LessonInfo"),
}

_OWNER = {name: module for module, names in _PUBLIC.items() for name in names}

# ``doctor`` names both a submodule and its function. Importing ``course_utils.doctor`` (as
# ``python -m course_utils doctor`` does) binds the package attribute to the module, which
# would then shadow the lazy function; binding the function now, from a module that imports
# only the standard library, keeps ``from course_utils import doctor`` the function.
from course_utils.doctor import doctor as doctor  # noqa: E402  (re-exported)

__all__ = sorted(_OWNER)


def __getattr__(name: str) -> Any:
    module = _OWNER.get(name)
    if module is None:
        raise AttributeError(f"module 'course_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # cache: the next lookup is a plain attribute access
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

