"""Mixed precision where it pays. bf16 is fast on GPUs that support it and on CPUs with native bf16
instructions (AVX-512 BF16, AMX); elsewhere the CPU emulates it, about 8x slower than float32 for
the matrix products of the default models (measured on an AVX2 CPU), so training falls back to
float32 there and says so."""

import torch


def fast_bf16(device_type: str) -> bool:
    """Whether bf16 matrix products run natively on this device type ('cuda' or 'cpu')."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def training_precision(requested: str) -> tuple[str, str | None]:
    """The mixed precision a training run uses for a recipe's `mixed_precision`, and a line saying
    why when it differs: bf16 on a device that would only emulate it trains in float32 instead."""
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "bf16" and not fast_bf16(device_type):
        return "no", f"mixed_precision bf16 -> no: this {device_type.upper()} has no native bf16, float32 is faster here"
    return requested, None
