"""One interrupt path, as a chain of runs of one search through the real CLI, Ray and MLflow:
SIGINT while Ray starts, then three interrupt/resume cycles across the stages (SIGINT during
coarse, SIGTERM during fine, two SIGINTs in a row during retrain); then ``--resume`` finishes
the search.

After each interrupt: the exit code (130, 143), the one line that says how to continue, the
running stage marked interrupted (never done), no MLflow run left RUNNING, and no process of the
search's Ray left (they all carry the test's own ``RAY_TMPDIR`` in their environment). At the
end: one FINISHED parent run, no trial with two runs, no epoch logged twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from procs import pids_with_marker, stop_group, stop_pids

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ARGS = [
    "search", "--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke",
    "--set", "coarse.epochs=3", "--set", "coarse.eval_topologies=1",
    "--set", "coarse.population=1", "--set", "coarse.generations=0", "--set", "coarse.top_k=1",
    "--set", "coarse.asha.enabled=false", "--set", "fine.epochs=3",
    "--set", "fine.warmup_epochs=0", "--set", "fine.asha.enabled=false",
    "--set", "retrain.epochs=3", "--set", "retrain.baselines=[]",
    "--set", "data.synthetic_cases=6", "--set", "data.cases=6", "--set", "data.folds=3",
]  # fmt: skip
LINE = "interrupted; continue with: raynas search --space c2f_small"
SECRET = "raynas-test-sekrit-4711"  # in AWS_SECRET_ACCESS_KEY: must not reach Ray's processes


class Search:
    """Runs of one search in ``workdir``, each with the test's own Ray temp dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ray_tmp = tempfile.mkdtemp(prefix="rni")  # short: Ray's socket paths < 108 chars
        self.env = dict(os.environ, RAY_TMPDIR=self.ray_tmp, PYTHONUNBUFFERED="1")
        self.env.update(OMP_NUM_THREADS="1", AWS_SECRET_ACCESS_KEY=SECRET)
        self.proc: subprocess.Popen | None = None

    @property
    def folder(self) -> Path:
        return next((self.workdir / "raynas_runs" / "raynas").iterdir())

    def log(self) -> str:
        try:
            return (self.folder / "search.log").read_text()
        except (OSError, StopIteration):
            return ""

    def start(self, *extra: str) -> None:
        self.err = open(self.workdir / f"stderr-{time.monotonic_ns()}.txt", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "raynas", *ARGS, *extra],
            cwd=self.workdir, env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=self.err,
        )  # fmt: skip

    def wait_for(self, ready, what: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.proc.poll() is None, f"the search ended before {what}: {self.stderr()}"
            assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
            time.sleep(0.2)

    def stderr(self) -> str:
        self.err.flush()
        self.err.seek(0)
        return self.err.read()[-4000:]

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def finish(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_group(self.proc.pid)
            self.proc.wait(timeout=30)

    def ray_left(self, timeout: float = 15) -> list[int]:
        """Processes of this search's Ray still alive ``timeout`` s after the driver ended."""
        deadline = time.monotonic() + timeout
        while (left := pids_with_marker(self.ray_tmp)) and time.monotonic() < deadline:
            time.sleep(0.5)
        return left

    def runs(self) -> list:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{self.workdir / 'mlflow.db'}")
        exp = client.get_experiment_by_name("raynas")
        return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)

    def state(self) -> dict:
        return json.loads((self.folder / "state.json").read_text())

    def check_interrupted(self, code: int, stage: str | tuple[str, ...]) -> None:
        rc = self.finish()
        err = self.stderr()
        assert rc == code, err
        lines = [line for line in err.splitlines() if line.startswith("interrupted")]
        assert len(lines) == 1 and lines[0].startswith(LINE), err
        assert lines[0].endswith(" --resume") and lines[0].count("--resume") == 1, lines[0]
        assert err.strip().splitlines()[-1] == lines[0], err
        state = self.state()
        stages = (stage,) if isinstance(stage, str) else stage
        assert state["interrupted"]["stage"] in stages, state
        assert state["interrupted"]["stage"] not in state.get("done", [])
        assert not state.get("finished")
        running = [r.info.run_name for r in self.runs() if r.info.status == "RUNNING"]
        assert not running, f"runs left RUNNING: {running}"
        assert not self.ray_left(), "Ray processes of the search outlived it"


def _with_secret(pids: list[int], *, but: int) -> list[str]:
    found = []
    for pid in pids:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="ignore")
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if pid != but and SECRET in environ:
            found.append(cmd[:80])
    return found


def _lines(search: Search, text: str) -> int:
    return search.log().count(text)


@pytest.mark.heavy
def test_interrupts_then_resume_finishes(tmp_path: Path) -> None:
    search = Search(tmp_path)
    session = Path(search.ray_tmp) / "ray"
    try:
        # 1. SIGINT while the local Ray starts
        search.start()
        search.wait_for(lambda: any(session.glob("session_*/logs")), "Ray start-up")
        search.signal(signal.SIGINT)
        # the interrupt takes effect where the driver next looks: still in setup, or, where Ray's
        # start returned first (a loaded machine), at the coarse stage's start
        search.check_interrupted(130, ("setup", "coarse"))

        # 2. SIGINT during the coarse stage, once trials have reported an epoch
        search.start("--resume")
        search.wait_for(lambda: _lines(search, "callbacks: [coarse]") >= 1, "coarse result")
        leaked = _with_secret(pids_with_marker(search.ray_tmp), but=search.proc.pid)
        search.signal(signal.SIGINT)
        search.check_interrupted(130, "coarse")
        assert not leaked, f"Ray processes with the driver's AWS secret: {leaked}"
        assert "coarse" not in search.state().get("done", [])
        killed = [r for r in search.runs() if r.info.status == "KILLED"]
        assert any(r.data.tags.get("raynas.kind") == "search" for r in killed)

        # 3. SIGTERM once the fine stage reports
        search.start("--resume")
        search.wait_for(lambda: _lines(search, "callbacks: [fine]") >= 1, "a fine result")
        search.signal(signal.SIGTERM)
        search.check_interrupted(143, "fine")

        # 4. two SIGINTs during retrain: the second ends the process at once, after running
        # the cleanups registered now (and only those)
        search.start("--resume")
        search.wait_for(lambda: _lines(search, "callbacks: [retrain]") >= 1, "a retrain result")
        search.signal(signal.SIGINT)
        time.sleep(0.3)
        search.signal(signal.SIGINT)
        sent = time.monotonic()
        search.check_interrupted(130, "retrain")
        assert time.monotonic() - sent < 30  # what took time here is check_interrupted's waiting
        forced = [ln for ln in search.log().splitlines() if "forced exit: cleanups" in ln]
        assert len(forced) == 1, forced
        names = forced[0].split("forced exit: cleanups ")[1].split(", ")
        # retrain's signing is there unless its stage had already stopped (and signed) when
        # the second signal came; coarse's and fine's went with their stages
        rest = ["mark search interrupted", "mark runs KILLED", "kill local Ray"]
        assert names in (["sign retrain", *rest], rest), names

        # 5. --resume finishes the search
        search.start("--resume")
        rc = search.finish(timeout=600)
        assert rc == 0, search.stderr()
    finally:
        search.cleanup()
        stop_pids(pids_with_marker(search.ray_tmp))

    logs = [p for p in Path(search.ray_tmp).rglob("*") if p.is_file() and p.stat().st_size < 1e8]
    assert not [p.name for p in logs if SECRET.encode() in p.read_bytes()]
    left = [ln.split("force-exit cleanups left: ")[1] for ln in search.log().splitlines()
            if "force-exit cleanups left: " in ln]  # fmt: skip
    assert len(left) >= 4 and set(left) == {"none"}, left  # every run that closed
    state = search.state()
    assert state["done"] == ["coarse", "fine", "retrain"] and state["finished"]
    assert "interrupted" not in state and "running" not in state
    runs = search.runs()
    parents = [r for r in runs if r.data.tags.get("raynas.kind") == "search"]
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert not [r.info.run_name for r in runs if r.info.status != "FINISHED"]
    trials = [r for r in runs if r.data.tags.get("raynas.kind") == "trial"]
    ids = [r.data.tags["trial_id"] for r in trials]
    assert len(ids) == len(set(ids)), "a trial got a second MLflow run"
    assert sum(r.data.tags["stage"] == "coarse" for r in trials) == 4  # c2f_small's clusters
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run in trials:  # the epoch is the step of every per-epoch metric (`<stage>/dice` on
        stage = run.data.tags["stage"]  # supernet runs, `dice` on retrain runs)
        key = "dice" if stage == "retrain" else f"{stage}/dice"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert steps and len(steps) == len(set(steps)), f"{run.info.run_name} logged an epoch twice"
        if stage == "coarse":
            assert max(steps) == 3  # interrupted trials finished their epochs
    shutil.rmtree(search.ray_tmp, ignore_errors=True)
