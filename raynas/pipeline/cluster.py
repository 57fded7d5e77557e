"""The Ray cluster a run uses: ``--address`` checked before any work starts, and the trials
sized to the cluster's CPUs and GPUs (how many run at once). Imports no Ray: the cluster is
started and joined in :mod:`raynas.tune`."""

from __future__ import annotations

import errno
import logging
import math
import socket
from dataclasses import dataclass
from typing import Any

from raynas.errors import UserError

__all__ = ["TrialSlots", "check_address", "size_trials"]

logger = logging.getLogger("raynas.search")


def check_address(address: str | None, timeout: float = 5.0) -> None:
    """Checks ``--address`` before any work starts: for ``ray://HOST:PORT``, that something
    listens there (Ray Client itself retries for ~30 s before it gives up)."""
    if not address or not address.startswith("ray://"):
        return
    hostport = address[len("ray://") :].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: expected ray://HOST:PORT (e.g. ray://head:10001)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
            if sock.getsockname() == sock.getpeername():
                # a connect to a free local port of the ephemeral range can meet itself (TCP
                # simultaneous open): nothing listens there
                raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"--address {address}: cannot connect to Ray (no Ray client server at {hostport}: "
            f"{reason})"
        ) from None


@dataclass(frozen=True)
class TrialSlots:
    """What each trial asks of Ray, and how many trials run at once."""

    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int


def size_trials(
    runtime: Any, *, cpus_per_trial: float, gpus_per_trial: float, gpus: int | None
) -> TrialSlots:
    """Sizes the trials to the cluster ``runtime`` (its ``cpus`` and ``gpus``): ``gpus`` is the
    GPU budget (``--gpus``; ``None``: all of the cluster's), ``gpus_per_trial`` the preset's.
    With no GPU (or a budget below one trial's share) every trial runs on CPU."""
    cpus = cpus_per_trial
    if not (math.isfinite(cpus) and cpus > 0):
        raise UserError(f"--cpus-per-trial {cpus}: must be a finite number > 0")
    if cpus > runtime.cpus:
        raise UserError(
            f"--cpus-per-trial {cpus:g}: the Ray cluster has only {runtime.cpus:g} CPUs"
        )
    gpt = gpus_per_trial if runtime.gpus > 0 else 0.0
    budget = runtime.gpus if gpus is None else min(gpus, runtime.gpus)
    if gpus is not None and gpus > runtime.gpus:
        logger.warning("--gpus %d: the cluster has %g GPUs; using those", gpus, runtime.gpus)
    if gpt > 0 and budget >= gpt:
        concurrent = int(math.floor(budget / gpt + 1e-9))
    else:
        gpt = 0.0  # no GPU: everything runs on CPU
        concurrent = int(max(1, math.floor(runtime.cpus / cpus)))
    slots = TrialSlots(float(cpus), float(gpt), max(1, concurrent))
    logger.info(
        "resources: %g CPUs, %g GPUs; %g CPU + %g GPU per trial; up to %d trials at once",
        runtime.cpus,
        runtime.gpus,
        cpus,
        gpt,
        slots.max_concurrent,
    )
    return slots
