"""pareto_front on hand-made tables (on validation Dice), save_frontier files and the rich
table (validation Dice picks, test Dice reported)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from raynas.tracking import ParetoPoint, frontier_table, pareto_front, save_frontier

# (name, validation Dice, params) rows -> names on the front, in order (params up, then Dice down)
CASES = {
    "single": ([("a", 0.5, 10)], ["a"]),
    "dominated": ([("a", 0.8, 10), ("b", 0.7, 20)], ["a"]),
    "trade_off": ([("a", 0.6, 10), ("b", 0.7, 20), ("c", 0.8, 40)], ["a", "b", "c"]),
    "mixed": (
        [("a", 0.6, 10), ("b", 0.55, 15), ("c", 0.7, 20), ("d", 0.65, 30), ("e", 0.9, 100)],
        ["a", "c", "e"],
    ),
    "same_params_tie": ([("a", 0.7, 10), ("b", 0.8, 10)], ["b"]),
    "same_dice_tie": ([("a", 0.7, 10), ("b", 0.7, 20)], ["a"]),
    "exact_duplicates": ([("b", 0.7, 10), ("a", 0.7, 10), ("c", 0.6, 20)], ["a", "b"]),
    "nan_never_on_front": ([("a", math.nan, 1), ("b", 0.1, 100)], ["b"]),
    "all_nan": ([("a", math.nan, 1)], []),
    "empty": ([], []),
}


def _points(rows: list[tuple[str, float, int]]) -> list[ParetoPoint]:
    return [ParetoPoint(n, val_dice=d, params=p, run_id=f"r-{n}") for n, d, p in rows]


def _brute_force(points: list[ParetoPoint]) -> set[str]:
    def dominated(p: ParetoPoint) -> bool:
        return any(
            q is not p
            and q.val_dice >= p.val_dice
            and q.params <= p.params
            and (q.val_dice > p.val_dice or q.params < p.params)
            for q in points
        )

    return {p.name for p in points if math.isfinite(p.val_dice) and not dominated(p)}


@pytest.mark.parametrize(("rows", "expected"), CASES.values(), ids=CASES.keys())
def test_pareto_front(rows: list[tuple[str, float, int]], expected: list[str]) -> None:
    points = _points(rows)
    front = pareto_front(points)
    assert [p.name for p in front] == expected
    assert {p.name for p in front} == _brute_force(points)
    assert [p.name for p in pareto_front(reversed(points))] == expected  # order-independent


def test_point_validation() -> None:
    with pytest.raises(ValueError, match="kind must be one of searched, baseline, random"):
        ParetoPoint("a", val_dice=0.5, params=1, kind="other")
    with pytest.raises(ValueError, match="params"):
        ParetoPoint("a", val_dice=0.5, params=-1)
    with pytest.raises(ValueError, match="params"):
        ParetoPoint("a", val_dice=0.5, params=2.5)
    assert ParetoPoint("a", val_dice=1, params=3.0).params == 3


def _table() -> list[ParetoPoint]:
    return [
        ParetoPoint(
            "c2f-0#0",
            val_dice=0.62,
            params=20_000,
            run_id="r0",
            test_dice=0.66,
            per_class={"test_dice_organ": 0.7, "val_dice_organ": 0.75},
        ),
        ParetoPoint("c2f-1", val_dice=0.70, params=50_000, run_id="r1", test_dice=0.71),
        ParetoPoint("c2f-2", val_dice=0.60, params=80_000, run_id="r2"),
        ParetoPoint("unet", val_dice=0.72, params=400_000, run_id="r3", kind="baseline"),
        ParetoPoint("dynunet", val_dice=0.65, params=900_000, run_id=None, kind="baseline"),
    ]


def test_save_frontier_files(tmp_path: Path) -> None:
    paths = save_frontier(_table(), tmp_path / "out", stem="front")
    assert set(paths) == {"csv", "json", "png"}
    for key, path in paths.items():
        assert path == tmp_path / "out" / f"front.{key}"
        assert path.stat().st_size > 0
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with paths["csv"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "name",
        "trial",
        "kind",
        "stage",
        "val_dice",
        "test_dice",
        "params",
        "run_id",
        "on_front",
        "learned",
        "test_dice_organ",
        "val_dice_organ",
    ]
    assert [(r["name"], r["on_front"]) for r in rows] == [
        ("c2f-0-0", "True"),
        ("c2f-1", "True"),
        ("c2f-2", "False"),
        ("unet", "True"),
        ("dynunet", "False"),
    ]
    assert rows[3]["kind"] == "baseline" and rows[3]["params"] == "400000"
    assert float(rows[1]["val_dice"]) == 0.70 and rows[4]["run_id"] == ""
    assert float(rows[0]["test_dice"]) == 0.66 and float(rows[0]["test_dice_organ"]) == 0.7
    assert rows[1]["val_dice_organ"] == "nan" and rows[3]["test_dice"] == "nan"
    data = json.loads(paths["json"].read_text())
    assert data["front"] == ["c2f-0-0", "c2f-1", "unet"]
    assert rows[0]["trial"] == "c2f-0#0"  # the trial's key, which names models/<trial>.pt
    assert data["objectives"] == {"val_dice": "max", "params": "min"}
    assert "decides nothing" in data["test_dice"]
    assert len(data["points"]) == 5
    first = data["points"][0]
    assert (first["val_dice"], first["test_dice"], first["val_dice_organ"]) == (0.62, 0.66, 0.75)
    assert data["points"][3]["test_dice"] is None  # NaN is written as null


def test_save_frontier_rejects_empty(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one point"):
        save_frontier([], tmp_path)


def test_frontier_table_lists_front_first() -> None:
    console = Console(width=120, record=True)
    console.print(frontier_table(_table()))
    text = console.export_text()
    rows = [
        [cell.strip() for cell in line.split("\u2502")[1:-1]]
        for line in text.splitlines()
        if "c2f-" in line or "unet" in line
    ]
    assert [(r[0], r[1]) for r in rows] == [
        ("*", "c2f-0-0"),
        ("*", "c2f-1"),
        ("*", "unet"),
        ("", "c2f-2"),
        ("", "dynunet"),
    ]
    assert "400,000" in text and "0.7200" in text
    flat = " ".join(text.split())
    assert "val Dice picks the frontier" in flat and "reported only" in flat and "0.6600" in text


def test_frontier_table_says_searched_vs_random() -> None:
    console = Console(width=160, record=True)
    points = [*_table(), ParetoPoint("random0#0", val_dice=0.5, params=30_000, test_dice=0.71,
                                     kind="random")]  # fmt: skip
    console.print(frontier_table(points))
    text = console.export_text()
    assert "random0-0" in text and "random" in text
    # best searched by val: c2f-1 (0.70, test 0.71); random: 0.5 / 0.71
    assert "val Dice +0.2000, test Dice +0.0000" in " ".join(text.split())
    console = Console(width=160, record=True)
    console.print(frontier_table(_table()))
    assert "searched vs random" not in console.export_text()


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_table_never_cuts_a_name_or_run_id(width: int) -> None:
    """Long names and run ids are folded onto more lines where the terminal is narrow: read
    column by column, the table holds every character of each (it used to print ``searched0…``
    and ``8553341f…``), and no line is wider than the terminal."""
    from rich.console import Console

    pts = [
        ParetoPoint("searched0-0-0-1-2-2-3-2-2-1-1-0-0-0#0", val_dice=0.4, params=331_000,
                    run_id="8553341fabcdef0123456789abcdef01", test_dice=0.45),
        ParetoPoint("baseline-unet#0", val_dice=0.3, params=1_400_000, kind="baseline",
                    run_id="1234567890abcdef1234567890abcdef", test_dice=0.2),
    ]  # fmt: skip
    console = Console(width=width, record=True)
    console.print(frontier_table(pts))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    cells = [[c.strip() for c in line.split("\u2502")[1:-1]] for line in lines
             if line.startswith("\u2502")]
    assert "".join(row[1] for row in cells) == "".join(p.network for p in pts)
    assert "".join(row[6] for row in cells) == "".join(p.run_id for p in pts)


def test_at_80_columns_names_and_numbers_keep_one_line() -> None:
    """On an 80-column terminal only the run id folds: each network's name, kind and numbers
    stand whole on its first line (they used to fold as ``searched0`` / ``-0``)."""
    from rich.console import Console

    pts = [
        ParetoPoint("searched0-0-1-2#0", val_dice=0.4191, params=190_123, test_dice=0.451,
                    run_id="0123456789abcdef0123456789abcdef"),
        ParetoPoint("baseline-unet#0", val_dice=0.402, params=7_760_000, kind="baseline",
                    run_id="aaaabbbbccccddddeeeeffff00001111", test_dice=0.439),
    ]  # fmt: skip
    console = Console(width=80, record=True)
    console.print(frontier_table(pts))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [[c.strip() for c in line.split("\u2502")[1:-1]] for line in lines
            if line.startswith("\u2502") and line.split("\u2502")[2].strip()]  # fmt: skip
    assert [r[1:6] for r in rows] == [
        ["searched0-0", "searched", "0.4191", "0.4510", "190,123"],
        ["unet-0", "baseline", "0.4020", "0.4390", "7,760,000"],
    ]
