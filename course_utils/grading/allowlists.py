"""What a rebuilt model may use (``modelspec.rebuild``): allowlists, and the layer settings
that are sizes (pure data).

>>> "relu" in ALLOWED["torch.nn.functional"], "attrgetter" in ALLOWED["operator"]
(True, False)
"""

from __future__ import annotations

__all__ = ["ALLOWED", "METHODS", "ATTRIBUTES", "SIZES"]

# The functions a rebuilt forward may call, by module: an allowlist (no file, compiler,
# operator-registry or global-state function of torch is reachable, and no operator that
# fetches attributes or calls what it is given, such as attrgetter or call).
ALLOWED = {
    "torch": frozenset({
        "cat", "concat", "stack", "hstack", "vstack", "flatten", "unflatten", "reshape",
        "transpose", "permute", "squeeze", "unsqueeze", "chunk", "split", "narrow", "select",
        "index_select", "gather", "flip", "roll", "where", "relu", "sigmoid", "tanh",
        "softmax", "log_softmax", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs",
        "neg", "sign", "clamp", "clip", "minimum", "maximum", "add", "sub", "mul", "div",
        "true_divide", "pow", "square", "matmul", "mm", "bmm", "einsum", "mean", "sum", "prod",
        "amax", "amin", "max", "min", "argmax", "argmin", "std", "var", "norm", "cumsum",
        "logsumexp", "zeros_like", "ones_like", "full_like", "erf",
        "sin", "cos", "dropout", "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "t",
        "unbind", "broadcast_to", "tile", "repeat_interleave", "addmm", "baddbmm", "relu_",
        "topk", "sort", "cumprod"}),
    "torch.nn.functional": frozenset({
        "relu", "relu6", "gelu", "silu", "elu", "selu", "leaky_relu", "prelu", "hardtanh",
        "hardswish", "hardsigmoid", "mish", "softplus", "sigmoid", "tanh", "softmax",
        "log_softmax", "linear", "bilinear", "conv1d", "conv2d", "conv3d", "max_pool1d",
        "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
        "adaptive_max_pool1d", "adaptive_max_pool2d", "dropout", "dropout2d", "batch_norm",
        "layer_norm", "group_norm", "instance_norm", "pad", "interpolate", "normalize",
        "embedding", "pixel_shuffle", "glu", "logsigmoid", "softsign", "tanhshrink"}),
    "operator": frozenset({
        "add", "sub", "mul", "truediv", "pow", "neg", "pos", "abs",
        "matmul", "getitem", "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor",
        "invert", "not_", "iadd", "isub", "imul", "itruediv", "imatmul"}),
    "math": frozenset({"sqrt", "prod", "log", "exp", "pi"}),
    "builtins": frozenset({"len", "tuple", "list", "range", "min", "max", "abs", "sum"}),
}
ALLOWED["_operator"] = ALLOWED["operator"]
ALLOWED["torch.functional"] = ALLOWED["torch"]
ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim", "T", "mT", "real", "imag",
                         "is_cuda", "requires_grad", "values", "indices"})
METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "size", "dim", "numel",
    "permute", "transpose", "t", "contiguous", "expand", "expand_as", "repeat", "squeeze",
    "unsqueeze", "chunk", "split", "narrow", "select", "index_select", "gather", "flip",
    "roll", "mean", "sum", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "std",
    "var", "norm", "cumsum", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "exp", "log",
    "sqrt", "rsqrt", "abs", "neg", "clamp", "clamp_min", "clamp_max", "pow", "add", "sub",
    "mul", "div", "matmul", "mm", "bmm", "float", "double", "half", "to", "type_as",
    "masked_fill", "where", "detach", "clone", "sign", "square",
    "add_", "mul_", "relu_", "clamp_", "sub_", "div_", "sigmoid_", "tanh_", "all", "any", "eq",
    "ne", "lt", "le", "gt", "ge", "split_with_sizes", "unbind", "new_zeros", "new_ones",
    "new_full", "zero_", "fill_", "clip", "sin", "cos", "log1p", "expm1", "maximum",
    "minimum", "topk", "sort", "erf", "softplus", "cumprod"})


# Layer settings that are sizes and dimensions; every other number in a layer's settings
# (a dropout rate, an eps, a clamp bound, a padding value) counts towards a budget.
SIZES = frozenset({
    "in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride",
    "padding", "dilation", "output_padding", "groups", "num_features", "normalized_shape",
    "start_dim", "end_dim", "dim", "output_size", "num_embeddings", "embedding_dim",
    "padding_idx", "input_size", "hidden_size", "num_layers", "proj_size", "upscale_factor",
    "downscale_factor", "_reversed_padding_repeated_twice", "unflattened_size", "num_groups",
    "num_heads", "embed_dim", "in1_features", "in2_features", "num_parameters", "size"})
