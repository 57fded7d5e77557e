"""Smoke searches on real (local, 127.0.0.1) Ray clusters: through Ray Client (``ray://``) and
submitted as a Ray Job (``ray job submit ... -- raynas search --address auto``); a client server
that never comes up, a client without the token, and a closed port.

Each test starts its own head with ``ray start`` (its own ``--temp-dir``, free ports, token auth
with a token of its own), runs ``raynas search`` from another working directory, checks the
MLflow store, and stops exactly the processes of that head: those in the session ``ray start``
ran in, or whose command line / environment carries the test's marker. Never ``ray stop`` (other
tests and helpers run Ray on the same machine).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from procs import free_port, pids_with_marker

pytestmark = [pytest.mark.slow, pytest.mark.ray]

RAY = str(Path(sys.executable).with_name("ray"))
SMALL_SEARCH = ("--space", "c2f_small", "--dataset", "synthetic", "--preset", "smoke")
TINY = [
    # Small enough for ~3 minutes on 2 shared cores; every stage still runs.
    *("--set", "coarse.epochs=1", "--set", "coarse.eval_topologies=2"),
    *("--set", "coarse.population=2", "--set", "coarse.top_k=1"),
    *("--set", "fine.epochs=2", "--set", "fine.warmup_epochs=1", "--set", "retrain.epochs=1"),
    *("--set", "coarse.steps_per_epoch=2", "--set", "fine.steps_per_epoch=2"),
    *("--set", "retrain.steps_per_epoch=2", "--set", "retrain.baselines=[]"),
    *("--set", "data.synthetic_cases=6", "--set", "data.cases=6", "--set", "data.folds=3"),
]


def _stat(pid: int) -> list[str] | None:
    """``state ppid pgrp session ...`` of a live (non-zombie) process, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields


def _session_pids(sid: int) -> list[int]:
    """Live processes of the session ``sid`` (``ray start`` ran with ``start_new_session``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[3]) == sid:
                found.append(int(entry.name))
    return found


def _stop(pids: list[int], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL what is still alive after ``timeout`` (zombies count as gone)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_stat(p) is not None for p in pids):
            time.sleep(0.2)


@dataclass
class Cluster:
    address: str  # ray://127.0.0.1:PORT
    env: dict[str, str]  # what a client needs: token auth and the cluster's token
    temp_dir: Path
    gcs_port: int
    jobs_address: str | None = None  # http://127.0.0.1:PORT of the dashboard (Jobs API)


def _cluster_pids(temp_dir: Path, sid: int | None) -> list[int]:
    """The head's processes: its session, or the test's marker in command line / environment."""
    pids = {p for p in pids_with_marker(str(temp_dir)) if _stat(p) is not None}
    if sid is not None:
        pids |= set(_session_pids(sid))
    return sorted(pids)


@contextlib.contextmanager
def _start_cluster(
    workdir: Path, *, dashboard: bool = False, **head_vars: str
) -> Iterator[Cluster]:
    """A one-node Ray cluster (2 CPUs) on 127.0.0.1, stopped by pid afterwards, even on failure.

    ``dashboard`` starts Ray's dashboard (and with it the Jobs API; ``raynas[cluster]``) on a
    free port; ``head_vars`` are extra environment variables of the head's processes."""
    # Short path: Ray's unix sockets live under the temp dir (108-byte limit on their paths).
    temp_dir = Path(tempfile.mkdtemp(prefix="rn-ray-"))
    gcs_port, client_port, dashboard_port = free_port(), free_port(), free_port()
    token = secrets.token_hex(32)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    head_env = dict(
        os.environ,
        **auth,
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # every listener on 127.0.0.1
        RAY_USAGE_STATS_ENABLED="0",
        RAYNAS_TEST_RAY_TEMP_DIR=str(temp_dir),  # marker in every descendant's environment
        **head_vars,
    )
    head_dir = workdir / "head"  # the workers' working directory: not the driver's
    head_dir.mkdir()
    sid = None
    try:
        proc = subprocess.Popen(
            [
                RAY,
                "start",
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={gcs_port}",
                f"--ray-client-server-port={client_port}",
                "--num-cpus=2",
                "--num-gpus=0",
                *(
                    ["--include-dashboard=true", "--dashboard-host=127.0.0.1"]
                    + [f"--dashboard-port={dashboard_port}"]
                    if dashboard
                    else ["--include-dashboard=false"]
                ),
                # not Ray's fixed default 52365: the Jobs API goes through this agent
                f"--dashboard-agent-listen-port={free_port()}",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
            ],
            cwd=head_dir,
            env=head_env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        sid = proc.pid
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out[-3000:]
        yield Cluster(
            f"ray://127.0.0.1:{client_port}",
            auth,
            temp_dir,
            gcs_port,
            f"http://127.0.0.1:{dashboard_port}" if dashboard else None,
        )
    finally:
        _stop(_cluster_pids(temp_dir, sid))
        left = _cluster_pids(temp_dir, sid)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes of the test cluster still alive: {left}"


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[Cluster]:
    # The head's Ray Client proxy gives each client's server process 30 s to come up by
    # default; a CI machine busy with the rest of the suite once needed more.
    with _start_cluster(tmp_path, RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="180") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def stalling_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head whose Ray Client proxy never waits for a client's server (timeout 0 s): every
    ``ray://`` connection fails the way a head too busy to start the server in time fails."""
    workdir = tmp_path_factory.mktemp("stalling")
    with _start_cluster(workdir, RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="0") as cluster:
        yield cluster


# Ray Client's own waits, shortened for the tests of failing connections: the back-off between
# tries of a channel that does not answer (5 s, doubling) and the grace period for reconnecting
# a data channel the server dropped (30 s).
_QUICK_CLIENT = {
    "RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S": "1",
    "RAY_CLIENT_RECONNECT_GRACE_PERIOD": "2",
}


def _search(
    workdir: Path, env: dict[str, str], *args: str, timeout: int, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """``raynas search ARGS`` in ``workdir`` with ``env`` added (and ``drop`` removed)."""
    full = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "raynas", "search", *args],
        cwd=workdir,
        env=dict(full, PYTHONUNBUFFERED="1", **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _logs(cluster: Cluster) -> str:
    """The tails of the head's Ray Client server logs, for a failure message."""
    out = []
    for path in sorted((cluster.temp_dir / "session_latest" / "logs").glob("ray_client*")):
        out.append(f"\n--- {path.name}\n" + path.read_text(errors="replace")[-1500:])
    return "".join(out)


def test_search_through_ray_client(tmp_path: Path, ray_cluster: Cluster) -> None:
    driver = tmp_path / "driver"
    driver.mkdir()
    store = tmp_path / "store" / "mlflow.db"  # absolute: the cluster writes the trial runs
    storage = tmp_path / "shared"  # Tune's experiment folders and checkpoints
    proc = _search(
        driver,
        ray_cluster.env,
        *SMALL_SEARCH,
        "--address",
        ray_cluster.address,
        "--tracking-uri",
        f"sqlite:///{store}",
        "--storage-path",
        str(storage),
        *TINY,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + _logs(ray_cluster)
    assert "Pareto frontier" in proc.stdout

    # outputs where --storage-path says, read back by the driver (same machine = shared storage)
    folder = next((storage / "raynas").iterdir())
    for stage in ("coarse", "fine", "retrain"):
        assert (folder / "ray" / stage).is_dir(), stage
        assert (folder / f"{stage}.csv").is_file(), stage
    assert list((folder / "models").glob("*.pt")), "best weights not read back from checkpoint"
    assert not (driver / "raynas_runs").exists()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    exp = client.get_experiment_by_name("raynas")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("raynas.kind") == "search"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0].info.run_id
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert {r.data.tags["stage"] for r in children} == {"coarse", "fine", "retrain"}
    # the trial runs were written on the cluster (Tune runs there through Ray Client) and carry
    # the per-epoch metrics the trials reported
    # (supernet runs name it by their stage: coarse/dice, fine/dice)
    for run in children:
        stage = run.data.tags["stage"]
        assert ("dice" if stage == "retrain" else f"{stage}/dice") in run.data.metrics, stage
    assert all(r.info.status == "FINISHED" for r in children)


def test_search_submitted_as_a_ray_job(tmp_path: Path) -> None:
    """The README's Ray Job command: ``ray job submit ... -- raynas search --address auto``. The
    driver then runs on the head and attaches to the cluster the job names (``RAY_ADDRESS``)
    instead of starting a Ray of its own."""
    job_dir = tmp_path / "job"  # the job's --working-dir (uploaded to the cluster)
    job_dir.mkdir()
    store = tmp_path / "mlflow.db"
    storage = tmp_path / "shared"
    own_tmp = Path(tempfile.mkdtemp(prefix="rn-drv-"))  # where a Ray of its own would live
    ray_bin = str(Path(RAY).parent)
    try:
        with _start_cluster(tmp_path, dashboard=True, RAY_TMPDIR=str(own_tmp)) as cluster:
            assert cluster.jobs_address is not None
            env = dict(os.environ, **cluster.env, PATH=f"{ray_bin}:{os.environ['PATH']}")
            proc = subprocess.run(
                [
                    RAY, "job", "submit", "--address", cluster.jobs_address,
                    "--working-dir", str(job_dir), "--",
                    "raynas", "search", *SMALL_SEARCH, "--address", "auto",
                    "--tracking-uri", f"sqlite:///{store}", "--storage-path", str(storage), *TINY,
                ],
                cwd=job_dir, env=env, capture_output=True, text=True, timeout=500,
            )  # fmt: skip
            out = proc.stdout + proc.stderr
            assert proc.returncode == 0, out[-4000:]
            assert "Pareto frontier" in out and "succeeded" in out, out[-4000:]
            # the job's driver joined the test's cluster: no Ray session of its own
            assert not list(own_tmp.rglob("session_*")), sorted(own_tmp.rglob("*"))[:5]
    finally:
        shutil.rmtree(own_tmp, ignore_errors=True)
    folder = next((storage / "raynas").iterdir())
    assert (folder / "retrain.csv").is_file() and list((folder / "models").glob("*.pt"))

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    exp = client.get_experiment_by_name("raynas")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("raynas.kind") == "search"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def test_closed_client_port_fails_fast(tmp_path: Path) -> None:
    """A port that is bound but not listening: refused for as long as the test holds it (a port
    only looked up free could be taken by another process before the search connects, which
    then passed the address check and wrote its output folder on a loaded machine)."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))  # never listen(): every connect is refused
        port = held.getsockname()[1]
        start = time.monotonic()
        proc = _search(
            tmp_path,
            {},
            *SMALL_SEARCH,
            "--address",
            f"ray://127.0.0.1:{port}",
            timeout=120,
        )
        elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"ray://127.0.0.1:{port}" in lines[0], proc.stderr
    # before any work: no output folder, no Ray, and not Ray Client's ~30 s of retries
    assert not (tmp_path / "raynas_runs").exists()
    assert elapsed < 60, elapsed


def test_address_taken_by_another_program_writes_nothing(tmp_path: Path) -> None:
    """What made test_closed_client_port_fails_fast flaky under load: another process listens
    on the port (here: a plain socket that accepts and never answers). The connect check
    passes; the search must still write no store and no output folder before Ray has
    accepted the address (it used to create ``raynas_runs/`` and the preprocessed cache)."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        proc = _search(
            tmp_path, {"RAYNAS_RAY_CLIENT_ATTEMPTS": "1", **_QUICK_CLIENT}, *SMALL_SEARCH,
            "--address", f"ray://127.0.0.1:{port}", timeout=180,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"ray://127.0.0.1:{port}" in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_client_server_that_never_comes_up_is_retried_then_explained(
    tmp_path: Path, stalling_cluster: Cluster
) -> None:
    env = dict(stalling_cluster.env, RAYNAS_RAY_CLIENT_ATTEMPTS="2", **_QUICK_CLIENT)
    proc = _search(
        tmp_path, env, *SMALL_SEARCH, "--address", stalling_cluster.address,
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    retries = [line for line in lines if line.startswith("warning: ")]
    assert len(retries) == 1 and "(attempt 1 of 2); trying again" in retries[0], proc.stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], proc.stderr
    assert stalling_cluster.address in errors[0]
    assert "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S" in errors[0]
    assert "ray_client_server_" in errors[0] and "Traceback" not in errors[0]
    # a server was asked for on each attempt (their logs are named after their ports)
    logs = stalling_cluster.temp_dir / "session_latest" / "logs"
    servers = {p.stem for p in logs.glob("ray_client_server_*.err")}
    assert len(servers) >= 2, _logs(stalling_cluster)


def test_client_without_the_token_is_refused_with_the_hint(
    tmp_path: Path, stalling_cluster: Cluster
) -> None:
    proc = _search(
        tmp_path, _QUICK_CLIENT, *SMALL_SEARCH, "--address", stalling_cluster.address,
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", timeout=300,
        drop=("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert stalling_cluster.address in lines[0] and "RAY_AUTH_TOKEN" in lines[0]
