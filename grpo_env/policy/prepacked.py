"""bf16 linear weights reordered once into oneDNN's blocked layout, for weights that stay fixed
while they are used (a sampling call's decode steps, the frozen reference).

A bf16 ``F.linear`` on CPU runs oneDNN, which reorders the weight into its blocked layout at
every call. For the few rows of a decode step that reorder is most of the matmul: SmolLM2's
decode-step matmuls take 17.7 ms at 16 rows with plain weights and 9.2 ms prepacked; at the
~350 rows of a packed training row the matmuls go from ~720 to ~890 GFLOP/s. The outputs equal
``F.linear``'s to the bit (the same kernels, measured at 1-700 rows).
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn import functional as F


def prepack(weight: torch.Tensor, rows: int) -> torch.Tensor | None:
    """``weight`` [out, in] in oneDNN's layout for inputs of about ``rows`` rows (any row count
    works), for ``linear``; None where that does not apply: off the CPU, not bf16 (a float32
    oneDNN linear rounds differently from the MKL one that ``F.linear`` runs), or a torch
    without oneDNN bf16."""
    if weight.device.type != "cpu" or weight.dtype != torch.bfloat16 or not _onednn_bf16():
        return None
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows)


@functools.cache
def _onednn_bf16() -> bool:
    """Whether this torch and CPU run oneDNN's bf16 linear on prepacked weights."""
    ops = torch.ops.mkldnn
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(ops, "_reorder_linear_weight")
        and hasattr(ops, "_linear_pointwise")
        and bool(ops._is_mkldnn_bf16_supported())
    )


def pack(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``prepack``'s layout where it applies, else ``weight`` as it is."""
    packed = prepack(weight, rows)
    return weight if packed is None else packed


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear``, for plain weights and for ``prepack``'s."""
    if weight.is_mkldnn:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


class PrepackedLinear(nn.Module):
    """A frozen bf16 ``nn.Linear`` with its weight prepacked: the same outputs, no gradients.
    Its input is cast to the weight's dtype first, as autocast would cast it."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.packed = weight
        self.bias = bias
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x.to(self.packed.dtype), self.packed, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, prepacked"


def prepack_linears(model: nn.Module, rows: int) -> int:
    """Swap every frozen bf16 ``nn.Linear`` of ``model`` for a ``PrepackedLinear`` (in place);
    returns how many were swapped (0 where ``prepack`` does not apply)."""
    swaps = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Linear and not child.weight.requires_grad:
                packed = prepack(child.weight, rows)
                if packed is not None:
                    swaps.append((parent, name, PrepackedLinear(packed, child.bias)))
    for parent, name, module in swaps:
        setattr(parent, name, module)
    return len(swaps)
