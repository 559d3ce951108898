"""Where matrix products run in bfloat16, and how.

``precision="bf16"`` runs the products of training and encoding in bfloat16 (the CPU's AMX and
AVX512-BF16 units, a GPU's tensor cores) with float32 outputs, float32 master weights, float32
optimiser state and float32 loss and penalty sums; everything elementwise stays float32.
``"auto"`` picks bf16 where the hardware runs it natively and the products are large enough to
gain, and fp32 elsewhere, so it never makes a machine without bf16 units (or a tiny model)
slower. On this project's 2-core Sapphire Rapids machine a bf16
``torch.mm`` of (256×784)·(784×1000) runs 4-5x faster than the float32 one.
"""

from __future__ import annotations

import functools
import os
import warnings

import torch

from ..errors import ParameterError

__all__ = ["PRECISIONS", "native_bf16", "resolve_precision", "Linear"]

PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware (AMX or AVX512-BF16 on a CPU,
    bf16 support on a CUDA device). ``PSAE_NATIVE_BF16=0`` or ``1`` overrides the detection."""
    forced = os.environ.get("PSAE_NATIVE_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    if device.type == "cuda":
        return _cuda_bf16(device)
    if device.type != "cpu":
        return False
    flags = _cpu_flags()
    if flags:
        return bool({"amx_bf16", "avx512_bf16"} & flags)
    probe = getattr(torch._C, "_cpu", None)  # where /proc/cpuinfo is missing (macOS, Windows)
    return bool(probe and (getattr(probe, "_is_amx_tile_supported", lambda: False)()
                           or getattr(probe, "_is_avx512_bf16_supported", lambda: False)()))


def _cuda_bf16(device: torch.device) -> bool:
    """Whether this CUDA device has bf16 matrix units: compute capability 8 (Ampere) or
    newer. ``torch.cuda.is_bf16_supported()`` alone also says yes on a T4 or V100, where bf16
    is emulated (slower than float32), and asks the current device, not this one."""
    if getattr(torch.version, "hip", None):
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # torch before 2.3 asked no such question
            return bool(torch.cuda.is_bf16_supported())
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.cuda.get_device_capability(index)[0] >= 8


SMALL_PRODUCT = 78_125
"""Below this many weights (D·M) a product is too small for bf16 to pay for its casts: at
(64, 100) a bf16 training step ran at 0.72x the float32 one (benchmarks/README.md). With the
256-row batches of training that is the 2e8-FLOP step of
:data:`psae.training.threads.SMALL_STEP_FLOPS`."""


def resolve_precision(precision: str, device: torch.device, warn: bool = True,
                      size: int | None = None) -> str:
    """``"fp32"`` or ``"bf16"`` for ``precision`` on ``device`` and a model of ``size`` = D·M
    weights per layer; an explicit bf16 without hardware support still works (emulated,
    slowly) and says so."""
    if precision not in PRECISIONS:
        raise ParameterError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision == "auto":
        large = size is None or size >= SMALL_PRODUCT
        return "bf16" if native_bf16(device) and large else "fp32"
    if precision == "bf16" and warn and not native_bf16(device):
        warnings.warn(f"precision='bf16' on {device}, which has no native bf16 matrix units: "
                      "it works but runs slower than 'fp32' (use 'auto')", stacklevel=3)
    return precision


class Linear(torch.autograd.Function):
    """``x Wᵀ + b`` whose three products (forward, and both of backward) run in bf16 with
    float32 results; the bias and every gradient stay float32."""

    @staticmethod
    def forward(ctx, b: torch.Tensor, x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        xb, Wb = x.to(torch.bfloat16), W.to(torch.bfloat16)
        ctx.save_for_backward(xb, Wb)
        return torch.mm(xb, Wb.t()).float().add_(b)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        xb, Wb = ctx.saved_tensors
        gb = g.to(torch.bfloat16)
        gx = torch.mm(gb, Wb).float() if ctx.needs_input_grad[1] else None
        gW = torch.mm(gb.t(), xb).float() if ctx.needs_input_grad[2] else None
        return g.sum(0), gx, gW
