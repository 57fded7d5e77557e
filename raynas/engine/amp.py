"""Mixed precision for the training steps: one autocast policy per (device, setting).

The preset's ``amp`` takes one of :data:`AMP_CHOICES`:

- ``"auto"`` (default): mixed precision where it pays. On CUDA, bfloat16 autocast where the GPU
  supports it (no loss scaling needed), else float16 autocast with a ``GradScaler``; on CPU it
  is off (CPU autocast of 3D convolutions is slower than float32).
- ``"bf16"``: bfloat16 autocast on any device (refused on a CUDA GPU without bf16 support).
- ``"fp16"``: float16 autocast with a ``GradScaler`` on any device (``torch.amp.GradScaler``
  runs on CPU too, so an fp16 run and its checkpoints behave the same on both).
- ``"off"``: plain float32.

The old boolean values are accepted with a fixed mapping: ``true`` = ``"auto"``, ``false`` =
``"off"`` (:func:`normalize_amp`). :meth:`Precision.describe` says what was chosen, e.g.
``"bf16 autocast"`` or ``"fp16 autocast + grad scaler"``; the stage programs log it.

A ``GradScaler`` holds state (its loss scale, its growth tracker) that a resumed run needs:
:func:`grad_scaler` keeps one per optimiser, created on first use, so the training loops and
the stage program's checkpoint (:meth:`raynas.stages.StageProgram.state_dict`) see the same one.

Example:
    >>> policy = Precision.resolve(torch.device("cpu"), "bf16")
    >>> with policy.autocast():
    ...     y = torch.nn.Linear(4, 2)(torch.randn(3, 4))
    >>> y.dtype
    torch.bfloat16
    >>> Precision.resolve("cpu", "auto").describe()
    'float32'
"""

from __future__ import annotations

import weakref
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

__all__ = ["Precision", "AMP_CHOICES", "normalize_amp", "grad_scaler"]

AMP_CHOICES = ("auto", "bf16", "fp16", "off")
_BOOLS = {True: "auto", False: "off"}
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# One GradScaler per optimiser, kept across epochs so the loss scale stays calibrated.
_SCALERS: weakref.WeakKeyDictionary[torch.optim.Optimizer, torch.amp.GradScaler] = (
    weakref.WeakKeyDictionary()
)


def normalize_amp(amp: object) -> str:
    """``amp`` as one of :data:`AMP_CHOICES` (``True`` -> ``"auto"``, ``False`` -> ``"off"``).

    Raises:
        ValueError: any other value, naming the allowed ones.
    """
    if isinstance(amp, bool):
        return _BOOLS[amp]
    if isinstance(amp, str) and amp.strip().lower() in AMP_CHOICES:
        return amp.strip().lower()
    raise ValueError(
        f"amp must be one of {', '.join(AMP_CHOICES)} (true = auto, false = off), got {amp!r}"
    )


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
        scaled: use a ``GradScaler`` (float16 only).
        setting: the ``amp`` setting it was resolved from.

    Example:
        >>> Precision.resolve("cpu", "fp16").describe()
        'fp16 autocast + grad scaler'
    """

    device_type: str
    dtype: torch.dtype | None = None
    scaled: bool = False
    setting: str = "off"

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @classmethod
    def resolve(cls, device: torch.device | str, amp: object) -> Precision:
        """The policy for ``amp`` on ``device`` (see the module docstring). A ``Precision``
        is returned as it is when it was made for ``device``'s type.

        Raises:
            ValueError: ``amp`` is not a valid setting, ``"bf16"`` on a CUDA GPU without bf16,
                or a ``Precision`` made for another device type.
        """
        kind = torch.device(device).type
        if isinstance(amp, Precision):
            if amp.device_type != kind:
                raise ValueError(f"a precision policy for {amp.device_type} used on {kind}")
            return amp
        setting = normalize_amp(amp)
        if setting == "off" or (setting == "auto" and kind != "cuda"):
            return cls(kind, setting=setting)
        if setting == "auto":
            dtype = torch.bfloat16 if _cuda_bf16() else torch.float16
        else:
            dtype = _DTYPES[setting]
            if dtype == torch.bfloat16 and kind == "cuda" and not _cuda_bf16():
                raise ValueError(
                    "amp: bf16 asked for, but this GPU does not support bfloat16; "
                    "use amp: auto (fp16 with a grad scaler here) or fp16"
                )
        return cls(kind, dtype, scaled=dtype == torch.float16, setting=setting)

    def autocast(self) -> AbstractContextManager[object]:
        """``torch.autocast`` for this policy (a no-op context when disabled)."""
        return torch.autocast(
            device_type=self.device_type, dtype=self.dtype or torch.float32, enabled=self.enabled
        )

    def describe(self) -> str:
        """What runs: ``"float32"``, ``"bf16 autocast"`` or ``"fp16 autocast + grad scaler"``."""
        if not self.enabled:
            return "float32"
        name = "bf16" if self.dtype == torch.bfloat16 else "fp16"
        return f"{name} autocast" + (" + grad scaler" if self.scaled else "")


def grad_scaler(
    optimizer: torch.optim.Optimizer, precision: Precision
) -> torch.amp.GradScaler | None:
    """The ``GradScaler`` of ``optimizer`` under ``precision`` (None when it does not scale):
    one per optimiser, created on first use and kept while the optimiser lives."""
    if not precision.scaled:
        return None
    scaler = _SCALERS.get(optimizer)
    if scaler is None:
        scaler = _SCALERS[optimizer] = torch.amp.GradScaler(precision.device_type)
    return scaler
