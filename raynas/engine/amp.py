"""Mixed precision for the training steps: one autocast policy per (device, setting).

``amp=True`` means "mixed precision where it pays": on CUDA, bfloat16 autocast where the GPU
supports it (no loss scaling needed), else float16 autocast with a ``GradScaler``; on CPU it is
off (CPU autocast of 3D convolutions is slower than float32). ``amp="bf16"`` or ``"fp16"`` asks
for that dtype on any device (bf16 autocast works on CPU; a grad scaler is used only for fp16 on
CUDA). ``amp=False`` is plain float32.

Example:
    >>> policy = Precision.resolve(torch.device("cpu"), "bf16")
    >>> with policy.autocast():
    ...     y = torch.nn.Linear(4, 2)(torch.randn(3, 4))
    >>> y.dtype
    torch.bfloat16
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

__all__ = ["Precision", "AMP_CHOICES"]

AMP_CHOICES = (False, True, "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _cuda_bf16() -> bool:
    try:
        return bool(torch.cuda.is_bf16_supported())
    except (RuntimeError, AssertionError):  # no usable CUDA
        return False


@dataclass(frozen=True)
class Precision:
    """How the training steps run: autocast dtype (None = float32) and whether to scale.

    Attributes:
        device_type: ``"cuda"`` or ``"cpu"`` (what ``torch.autocast`` takes).
        dtype: the autocast dtype, or None for plain float32.
        scaled: use a ``GradScaler`` (float16 on CUDA only).
    """

    device_type: str
    dtype: torch.dtype | None = None
    scaled: bool = False

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @classmethod
    def resolve(cls, device: torch.device | str, amp: bool | str) -> Precision:
        """The policy for ``amp`` on ``device`` (see the module docstring).

        Raises:
            ValueError: ``amp`` is not one of False, True, ``"bf16"``, ``"fp16"``.
        """
        if amp not in AMP_CHOICES or (isinstance(amp, int) and not isinstance(amp, bool)):
            raise ValueError(f"amp must be one of {AMP_CHOICES}, got {amp!r}")
        kind = torch.device(device).type
        if amp is False:
            return cls(kind)
        if amp is True:
            if kind != "cuda":
                return cls(kind)
            dtype = torch.bfloat16 if _cuda_bf16() else torch.float16
        else:
            dtype = _DTYPES[str(amp)]
        return cls(kind, dtype, scaled=dtype == torch.float16 and kind == "cuda")

    def autocast(self) -> AbstractContextManager[object]:
        """``torch.autocast`` for this policy (a no-op context when disabled)."""
        return torch.autocast(
            device_type=self.device_type, dtype=self.dtype or torch.float32, enabled=self.enabled
        )

    def describe(self) -> str:
        if not self.enabled:
            return "float32"
        name = "bf16" if self.dtype == torch.bfloat16 else "fp16"
        return f"{name} autocast" + (" + grad scaler" if self.scaled else "")
