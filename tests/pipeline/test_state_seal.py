"""``state.json`` is sealed with the per-user secret and the files a resumed search reads back
carry keyed digests in it: :meth:`SearchFolder.verify` refuses an edited state, an edited
architecture or model file, a state from another search's secret, an unsealed or unreadable
state, each with one line naming the file (the CLI's exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raynas.errors import UserError
from raynas.pipeline.outputs import SearchFolder
from raynas.seal import load_secret


def _search(root: Path) -> SearchFolder:
    folder = SearchFolder(root)
    folder.create()
    folder.state.update(done=["coarse"], records={"coarse": [{"best_dice": 0.5}]})
    folder.write_architecture("searched0-a", json.dumps({"ops": [["skip"]]}))
    return folder


def _refused(root: Path, culprit: Path, why: str) -> None:
    with pytest.raises(UserError, match=why) as info:
        SearchFolder(root).verify()
    message = str(info.value)
    assert message.startswith(f"{culprit}: ") and "\n" not in message, message


def test_a_sealed_state_and_its_outputs_verify(tmp_path: Path) -> None:
    folder = _search(tmp_path / "s")
    again = SearchFolder(folder.root)
    again.verify()
    assert again.state["search_id"] == folder.state["search_id"]
    assert "architectures/searched0-a.json" in again.state["outputs"]
    (folder.root / "architectures" / "searched0-a.json").unlink()  # written again on resume
    SearchFolder(folder.root).verify()


@pytest.mark.parametrize("edit", ["done", "score", "search_id", "seal_dropped"])
def test_an_edited_state_is_refused(tmp_path: Path, edit: str) -> None:
    folder = _search(tmp_path / "s")
    state = json.loads(folder.state_file.read_text())
    if edit == "done":
        state["done"].append("fine")
    elif edit == "score":
        state["records"]["coarse"][0]["best_dice"] = 0.9
    elif edit == "search_id":
        state["search_id"] = "another"
    else:
        del state["seal"]
    folder.state_file.write_text(json.dumps(state))
    why = "has no raynas seal" if edit == "seal_dropped" else "does not match its raynas seal"
    _refused(folder.root, folder.state_file, why)


def test_a_state_sealed_with_another_secret_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAYNAS_SECRET_FILE", str(tmp_path / "their-secret"))
    folder = _search(tmp_path / "s")
    monkeypatch.setenv("RAYNAS_SECRET_FILE", str(tmp_path / "my-secret"))
    load_secret()  # mine exists too, and is another
    _refused(folder.root, folder.state_file, "does not match its raynas seal")


def test_a_missing_secret_is_said_not_made_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _search(tmp_path / "s")
    monkeypatch.setenv("RAYNAS_SECRET_FILE", str(tmp_path / "gone"))
    with pytest.raises(UserError, match="the raynas secret is missing"):
        SearchFolder(folder.root).verify()
    assert not (tmp_path / "gone").exists()


def test_an_edited_output_is_refused(tmp_path: Path) -> None:
    folder = _search(tmp_path / "s")
    arch = folder.root / "architectures" / "searched0-a.json"
    arch.write_text(json.dumps({"ops": [["p3d"]]}))
    _refused(folder.root, arch, "does not match its raynas digest")


def test_an_unreadable_state_is_one_line(tmp_path: Path) -> None:
    folder = _search(tmp_path / "s")
    folder.state_file.write_text('{"done": ["coarse"')
    _refused(folder.root, folder.state_file, "unreadable")
