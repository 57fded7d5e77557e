"""Unit costs of one trial, measured with the product's own code: :func:`calibrate_trial`.

A trial of the plan is built exactly as a Ray trial builds it: the search's trial spec
(:meth:`raynas.pipeline.setup.SearchSetup.spec`), the stage's program
(:func:`raynas.stages.make_program`: its dataset, loaders, network, optimizer, loss and AMP
setting), with the trial's thread count.
Then, on that program: one warm-up step, a few training steps through the stage's own engine
loop (``supernet_epoch`` / ``bilevel_epoch`` / ``train_epoch``, with the real training loader,
so a batch holds ``batch_size x samples_per_case`` patches and the data wait is included), one
scoring (the section's proxy patches or sliding window, as the program scores), the per-epoch
derivation of the fine stage, and one checkpoint (:func:`raynas.stages.checkpoint.write_checkpoint`
plus the copy Ray makes of it into the storage path).

Nothing here starts Ray or writes outside a temporary folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TrialCost", "WORKER_MODULES", "calibrate_trial", "worker_start_s",
           "window_forwards"]

# The modules a Ray worker imports for its first trial (raynas.tune.trainables and what a stage
# program pulls in, MONAI's lazily), timed in a fresh interpreter by :func:`worker_start_s`
# and imported here before a program is timed, so its set-up time holds no import.
WORKER_MODULES = ("raynas.tune.trainables", "raynas.stages", "raynas.engine",
                  "raynas.tracking.system", "monai.data", "monai.transforms", "monai.inferers")
_SPIN_LIMIT_S = 600.0  # a calibration neighbour's longest life


@dataclass
class TrialCost:
    """Seconds of one trial's parts, measured alone on this machine (see the module doc)."""

    setup_s: float  # the program: dataset, loaders (cached volumes), network, optimizer
    step_s: float  # one weights step (fine: during warm-up)
    arch_step_s: float  # fine after warm-up: one architecture + one weights step
    score_s: float  # one scoring (one topology for coarse)
    patches_s: float  # building the proxy patch set, once per trial (0: sliding window)
    other_s: float  # per epoch: the fine stage's derivation and parameter count
    ckpt_s: float  # writing one checkpoint and Ray's copy of it
    test_s: float  # retrain: the final test-case scoring (0 without test cases)
    steps_per_epoch: int
    source: str
    sharing: float = 1.0  # an epoch's slow-down with ``neighbours`` like trials beside it
    neighbours: int = 0


def window_forwards(volume: tuple[int, ...], roi: tuple[int, ...], overlap: float) -> int:
    """Sliding-window forwards for one volume (MONAI's ``dense_patch_slices`` count).

    >>> window_forwards((64, 64, 32), (32, 32, 16), 0.25)
    27
    """
    n = 1
    for v, p in zip(volume, roi, strict=False):
        stride = max(1, int(p * (1 - overlap)))
        n *= 1 if v <= p else math.ceil((v - p) / stride) + 1
    return n


def worker_start_s(stage: str, spec: dict[str, Any], candidate: dict[str, Any], *,
                   threads: int) -> float:
    """What a fresh Ray worker pays before its first trial's epochs that a reused one does not:
    in a new interpreter that has imported ``ray`` (a Ray worker has), the imports of the
    trainable (:data:`WORKER_MODULES`) and the first program's build less a second one's
    (first-use costs: lazy imports, caches, allocator)."""
    payload = json.dumps({"stage": stage, "spec": spec, "candidate": candidate,
                          "threads": threads})
    out = subprocess.run([sys.executable, "-m", "raynas.pipeline.plan_calibrate", payload],
                         check=True, capture_output=True, text=True)  # fmt: skip
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return figures["imports_s"] + max(0.0, figures["first_s"] - figures["second_s"])


def _fresh_worker(payload: str) -> dict[str, float]:
    """The measurement :func:`worker_start_s` runs in a new interpreter."""
    import importlib

    import ray  # noqa: F401 - a Ray worker has imported it before any trial

    data = json.loads(payload)
    start = time.perf_counter()
    for module in WORKER_MODULES:
        importlib.import_module(module)
    imports = time.perf_counter() - start
    import torch

    from raynas.stages import TrialSpec, make_program

    torch.set_num_threads(max(1, int(data["threads"])))
    trial = TrialSpec.from_dict({**data["spec"], "candidate": {**data["candidate"],
                                                               "trial": "plan"}})
    first = _timed(lambda: make_program(trial))
    second = _timed(lambda: make_program(trial))
    return {"imports_s": imports, "first_s": first, "second_s": second}


def _epoch_fn(program: Any, stage: str, *, update_arch: bool = False) -> Any:
    """``run(n)``: ``n`` training steps of the stage's engine loop, as its program calls it."""
    from raynas.engine import bilevel_epoch, supernet_epoch, train_epoch

    bundle, common = program.data.bundle, {"device": program.device, "amp": program.amp}
    if stage == "coarse" and not getattr(program, "standalone", False):

        def run(n: int) -> Any:
            return supernet_epoch(
                program.model, bundle.train, program.optimizer, program.loss_fn,
                sample=lambda: program.by_genome[program.sampler.next()], max_steps=n, **common,
            )  # fmt: skip

        return run
    if stage == "fine":

        def run(n: int) -> Any:
            return bilevel_epoch(
                program.model, bundle.weights, bundle.arch, program.optimizer,
                program.arch_optimizer, program.loss_fn, update_arch=update_arch, max_steps=n,
                **common,
            )  # fmt: skip

        return run

    def run(n: int) -> Any:
        return train_epoch(program.model, bundle.train, program.optimizer, program.loss_fn,
                           max_steps=n, **common)  # fmt: skip

    return run


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _step_s(run: Any, steps: int) -> float:
    run(1)  # warm-up: the loader's first batch, allocator, (CUDA) kernels
    return run(steps).seconds / steps


def _derive_s(program: Any) -> float:
    """The fine program's per-epoch derivation, as :meth:`FineProgram.train_and_score` does."""
    from raynas.nets import build_network, count_parameters, load_architecture

    def derive() -> None:
        arch = program.derived()
        json.dumps(arch, sort_keys=True)
        count_parameters(build_network(load_architecture(arch)))

    return _timed(derive)


def _ckpt_s(program: Any) -> float:
    """One checkpoint as the trainable writes it, plus Ray's copy into the storage path."""
    from raynas.stages.checkpoint import write_checkpoint

    with tempfile.TemporaryDirectory(prefix="raynas-plan-") as tmp:
        src, dst = Path(tmp, "ckpt"), Path(tmp, "persisted")
        src.mkdir()
        start = time.perf_counter()
        write_checkpoint(program, src, {})
        shutil.copytree(src, dst)
        return time.perf_counter() - start


def _spin(payload: str) -> None:
    """A neighbour for :func:`calibrate_trial`: the same trial's training steps, forever."""
    import torch

    from raynas.stages import TrialSpec, make_program

    data = json.loads(payload)
    torch.set_num_threads(max(1, int(data["threads"])))
    trial = TrialSpec.from_dict({**data["spec"], "candidate": {**data["candidate"],
                                                               "trial": "plan"}})
    program = make_program(trial)
    run = _epoch_fn(program, data["stage"], update_arch=data["stage"] == "fine")
    run(1)
    print("ready", flush=True)
    parent, start = os.getppid(), time.perf_counter()
    # until killed; never outliving the plan that started it, nor ``_SPIN_LIMIT_S``
    while os.getppid() == parent and time.perf_counter() - start < _SPIN_LIMIT_S:
        run(1)


def _neighbours(stage: str, spec: dict[str, Any], candidate: dict[str, Any], threads: int,
                count: int) -> list[subprocess.Popen]:
    """``count`` processes training the same trial beside this one (started and warm)."""
    payload = json.dumps({"stage": stage, "spec": spec, "candidate": candidate,
                          "threads": threads})
    procs = [subprocess.Popen([sys.executable, "-m", "raynas.pipeline.plan_calibrate", "--spin",
                               payload], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) for _ in range(count)]  # fmt: skip
    try:
        for proc in procs:
            if proc.stdout is None or proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a calibration neighbour did not start")
    except BaseException:
        _stop(procs)
        raise
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def calibrate_trial(stage: str, spec: dict[str, Any], candidate: dict[str, Any], *,
                    threads: int, steps: int, measure_steps: int = 3,
                    neighbours: int = 0) -> TrialCost:
    """Builds the trial's program from ``spec`` + ``candidate`` and measures its parts.

    Args:
        stage: ``coarse`` | ``fine`` | ``retrain``.
        spec: the search's trial spec of the stage (JSON-able, as Ray gets it).
        candidate: what the trial's config adds (a coarse key, a fine choice, an architecture).
        threads: torch threads, as the trainable sets them (``cpus_per_trial``).
        steps: the trial's training steps per epoch (reported back).
        measure_steps: training steps timed (after one warm-up step).
        neighbours: trials that will run beside this one on the same CPU cores: that many
            processes train the same trial while the steps and a scoring are timed again, and
            their ratio to the lone figures is the cost's ``sharing``.
    """
    import importlib

    import torch

    from raynas.stages import TrialSpec, make_program

    for module in WORKER_MODULES:  # paid by the worker's start (worker_import_s), not here
        importlib.import_module(module)
    torch.set_num_threads(max(1, int(threads)))
    trial = TrialSpec.from_dict({**spec, "candidate": {**candidate, "trial": "plan"}})
    make_program(trial)  # first use (a fresh worker's, see worker_start_s); then as reused
    start = time.perf_counter()
    program = make_program(trial)
    setup_s = time.perf_counter() - start
    section = program.section
    patches_s = 0.0
    if stage != "retrain" and getattr(section, "scoring", "sliding_window") == "patches":
        patches_s = _timed(program.patches)
    n = max(1, min(measure_steps, steps))
    step_s = _step_s(_epoch_fn(program, stage), n)
    arch_step_s = _step_s(_epoch_fn(program, stage, update_arch=True), n) if stage == "fine" \
        else step_s
    if stage == "coarse":
        if not getattr(program, "standalone", False):  # strategy asha: a plain network
            program.model.set_active(program.choices[0])

        def score() -> Any:
            return program.score(loss=section.rank_by == "loss")
    else:
        score = program.evaluate if stage == "retrain" else program.score
    score_s = _timed(score)
    other_s = _derive_s(program) if stage == "fine" else 0.0
    test_s = 0.0
    if stage == "retrain" and program.data.bundle.test is not None:
        test_s = _timed(program.test_metrics)
    device = program.device.type
    ckpt_s = _ckpt_s(program)
    sharing = 1.0
    if neighbours > 0:
        run = _epoch_fn(program, stage, update_arch=stage == "fine")
        alone = (arch_step_s if stage == "fine" else step_s) * n + score_s
        procs = _neighbours(stage, spec, candidate, threads, neighbours)
        try:
            shared = _step_s(run, n) * n + _timed(score)
        finally:
            _stop(procs)
        sharing = max(1.0, shared / alone)
    return TrialCost(
        setup_s=setup_s, step_s=step_s, arch_step_s=arch_step_s, score_s=score_s,
        patches_s=patches_s, other_s=other_s, ckpt_s=ckpt_s, test_s=test_s,
        steps_per_epoch=steps, source=f"calibrated on {device} ({threads} thread(s))",
        sharing=sharing, neighbours=neighbours,
    )  # fmt: skip


if __name__ == "__main__":  # worker_start_s's measurement, or a neighbour, in a new interpreter
    if sys.argv[1] == "--spin":
        _spin(sys.argv[2])
    else:
        print(json.dumps(_fresh_worker(sys.argv[1])))
