"""Opening a SQLite store (raynas.tracking.store): two processes creating the same new store at
once both get a complete one; a store that cannot be used is one UserError naming the file; a
store deleted or replaced mid-run stops the next MLflow call. Real MLflow, real processes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from raynas.errors import UserError
from raynas.tracking import (
    StoreVanished,
    client_for,
    ensure_experiment,
    prepare_store,
    resolve_tracking_uri,
)

_CREATE = """
import json, sys, time
from pathlib import Path
from raynas.tracking import client_for, ensure_experiment, prepare_store, resolve_tracking_uri
start = float(sys.argv[2])
while time.time() < start:  # both processes leave this line together
    time.sleep(0.005)
target = prepare_store(resolve_tracking_uri(sys.argv[1], workdir=Path.cwd()))
exp = ensure_experiment(target, "race")
run = client_for(target).create_run(exp).info.run_id
print(json.dumps({"store_id": list(target.store_id), "exp": exp, "run": run}))
"""


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete store, made once: tests copy it and damage the copy."""
    db = tmp_path_factory.mktemp("good-store") / "mlflow.db"
    prepare_store(resolve_tracking_uri(str(db), workdir=Path("/")))
    return db


def _copy(good: Path, folder: Path) -> Path:
    db = folder / "mlflow.db"
    db.write_bytes(good.read_bytes())
    return db


def _sql(db: Path, *statements: str) -> None:
    with sqlite3.connect(db) as con:
        for statement in statements:
            con.execute(statement)


def test_two_processes_create_one_new_store_together(tmp_path: Path) -> None:
    """MLflow alone, two processes racing on a new sqlite file fail in the schema migration
    (``table _alembic_tmp_... already exists``); through prepare_store both finish, on one
    complete store, with their runs in it."""
    import time

    db = tmp_path / "new" / "mlflow.db"
    db.parent.mkdir()
    start = str(time.time() + 3.0)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATE, f"sqlite:///{db}", start],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    for proc, (_out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert results[0]["store_id"] == results[1]["store_id"]  # the same file, opened by both
    assert results[0]["exp"] == results[1]["exp"]
    target = prepare_store(resolve_tracking_uri(str(db), workdir=tmp_path))
    client = client_for(target)
    runs = client.search_runs([results[0]["exp"]])
    assert {r.info.run_id for r in runs} == {r["run"] for r in results}
    # no temporary store left beside it; the lock file stays (it is never removed)
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db", "mlflow.db.lock"]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (["CREATE TABLE _alembic_tmp_tags (x INTEGER)"], "half-finished MLflow schema migration"),
        (["DROP TABLE alembic_version"], "not a complete MLflow store (no table alembic_version"),
        (["UPDATE alembic_version SET version_num = '0a8213491aaa'"], "schema revision 0a82"),
    ],
    ids=["migration-leftover", "no-version", "other-revision"],
)
def test_half_made_store_is_one_line_naming_the_file(
    good_db: Path, tmp_path: Path, damage: list[str], expected: str
) -> None:
    db = _copy(good_db, tmp_path)
    _sql(db, *damage)
    before = db.read_bytes()
    with pytest.raises(UserError) as info:
        prepare_store(resolve_tracking_uri(str(db), workdir=tmp_path))
    text = str(info.value)
    assert "\n" not in text and str(db) in text and expected in text, text
    assert "move it away" in text
    assert db.read_bytes() == before  # refused, never "repaired"


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not an sqlite file" * 100)
    with pytest.raises(UserError, match="cannot be read as an SQLite database"):
        prepare_store(resolve_tracking_uri(str(db), workdir=tmp_path))


def test_resume_does_not_create_a_missing_store(tmp_path: Path) -> None:
    db = tmp_path / "gone.db"
    with pytest.raises(UserError, match=r"--resume: the MLflow store .*gone.db is missing"):
        prepare_store(resolve_tracking_uri(str(db), workdir=tmp_path), create=False)
    assert not db.exists()


def test_deleted_or_replaced_store_stops_the_next_call(good_db: Path, tmp_path: Path) -> None:
    db = _copy(good_db, tmp_path)
    target = prepare_store(resolve_tracking_uri(str(db), workdir=tmp_path))
    exp = ensure_experiment(target, "vanish")
    db.unlink()
    with pytest.raises(StoreVanished, match="was deleted while the run used it"):
        ensure_experiment(target, "vanish")
    assert not db.exists()  # nothing recreated it half-made
    _copy(good_db, tmp_path)  # another file at the same path
    with pytest.raises(StoreVanished, match="was replaced by another file"):
        client_for(target)
    assert exp
