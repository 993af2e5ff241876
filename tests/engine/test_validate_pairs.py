"""LFW pairs.txt: parsing the real layout (10 folds, same and different lines), fold accuracy, ROC, TAR@FAR."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.cli import main as sketchface
from engine.validate.cases import ValidationError
from engine.validate.pairs import Pair, best_threshold, evaluate, parse_pairs, roc
from tests.fixtures.photos import augment, real_photos

# The first lines of LFW's own pairs.txt (10 folds of 300 + 300), as distributed: tab separated.
LFW_HEAD = "10\t300\nAbel_Pacheco\t1\t4\nAkhmed_Zakayev\t1\t3\n"
LFW_DIFF = "AJ_Cook\t1\tMarsha_Thomason\t1\nAJ_Lamas\t1\tZach_Safrin\t1\n"


def write_pairs(path: Path, folds: int, per: int, people: list[str], images: int = 3) -> list[tuple]:
    """An LFW-layout file over ``people`` with ``images`` pictures each; returns the lines as tuples."""
    rng = np.random.default_rng(0)
    lines: list[tuple] = []
    for _ in range(folds):
        for _ in range(per):
            name = people[int(rng.integers(len(people)))]
            a, b = rng.choice(np.arange(1, images + 1), 2, replace=False)
            lines.append((name, int(a), int(b)))
        for _ in range(per):
            x, y = rng.choice(len(people), 2, replace=False)
            lines.append((people[x], int(rng.integers(1, images + 1)), people[y], int(rng.integers(1, images + 1))))
    path.write_text(f"{folds}\t{per}\n" + "".join("\t".join(map(str, t)) + "\n" for t in lines))
    return lines


def test_real_lfw_lines_parse_into_folds_of_same_then_different(tmp_path: Path) -> None:
    lines = write_pairs(tmp_path / "pairs.txt", 10, 3, ["Abel_Pacheco", "AJ_Cook", "Zach_Safrin", "Mary_Jo"])
    folds, per, pairs = parse_pairs(tmp_path / "pairs.txt")
    assert (folds, per, len(pairs)) == (10, 3, 60)
    for f in range(10):
        block = [p for p in pairs if p.fold == f]
        assert [p.same for p in block] == [True] * 3 + [False] * 3
    assert pairs[0] == Pair(0, True, (lines[0][0], lines[0][1]), (lines[0][0], lines[0][2]))
    assert pairs[3] == Pair(0, False, (lines[3][0], lines[3][1]), (lines[3][2], lines[3][3]))
    # The distributed header and line shapes, verbatim.
    (tmp_path / "lfw.txt").write_text("1\t2\n" + LFW_HEAD.split("\n", 1)[1] + LFW_DIFF)
    _, _, real = parse_pairs(tmp_path / "lfw.txt")
    assert real[0] == Pair(0, True, ("Abel_Pacheco", 1), ("Abel_Pacheco", 4))
    assert real[3] == Pair(0, False, ("AJ_Lamas", 1), ("Zach_Safrin", 1))


@pytest.mark.parametrize("text,match", [
    ("Abel_Pacheco 1 4\n", "header"),
    ("10 300\nAbel_Pacheco 1 4\n", "599|lines"),
    ("1 1\nAJ_Cook 1 Marsha_Thomason 1\nAbel_Pacheco 1 4\n", "line 2: expected a same-person"),
    ("1 1\nAbel_Pacheco 1 4\nAbel_Pacheco 1 Zach_Safrin x\n", "line 3: expected a different-person"),
])
def test_malformed_pairs_files_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "p.txt").write_text(text)
    with pytest.raises(ValidationError, match=match):
        parse_pairs(tmp_path / "p.txt")


def test_best_threshold_is_the_brute_force_optimum() -> None:
    rng = np.random.default_rng(3)
    same = rng.random(300) < 0.5
    scores = np.where(same, rng.normal(0.5, 0.2, 300), rng.normal(0.1, 0.2, 300))
    th = best_threshold(scores, same)
    brute = max(np.mean((scores >= t) == same) for t in np.r_[scores, scores.max() + 1])
    assert np.mean((scores >= th) == same) == pytest.approx(brute)


def test_accuracy_roc_and_tar_at_far_by_hand() -> None:
    pairs = [Pair(f, s, ("a", 1), ("b", 2)) for f in range(10) for s in (True,) * 10 + (False,) * 10]
    perfect = [0.9 if p.same else 0.1 for p in pairs]
    r = evaluate(perfect, pairs)
    assert r["accuracy"] == 1.0 and r["auc"] == pytest.approx(1.0) and r["folds"] == 10
    assert r["tar_at_far"]["FAR=0.01"] == 1.0
    assert r["tar_at_far"]["FAR=0.001"] is None and "FAR=0.0001" in r["not_measurable"]  # 100 impostors only
    # One impostor per fold scores above every genuine pair: each fold then misclassifies exactly it.
    mixed = [0.95 if (not p.same and i % 20 == 15) else s for i, (p, s) in enumerate(zip(pairs, perfect, strict=True))]
    r = evaluate(mixed, pairs)
    assert r["accuracy"] == pytest.approx(0.95)
    far, tar, _ = roc(np.asarray(mixed), np.asarray([p.same for p in pairs]))
    assert far[1] == pytest.approx(10 / 100) and tar[1] == 0.0 and tar[-1] == 1.0 and far[-1] == 1.0


def test_eval_pairs_cli_on_a_small_generated_lfw_set(installed_models: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    people = []
    for name, bgr in real_photos()[:4]:
        person = f"Person_{name.title()}"
        people.append(person)
        for n in range(1, 4):
            folder = tmp_path / "lfw" / person
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{person}_{n:04d}.jpg"), augment(bgr, rng))
    write_pairs(tmp_path / "pairs.txt", 10, 2, people)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = sketchface(["eval-pairs", str(tmp_path / "pairs.txt"), str(tmp_path / "lfw"), "--json",
                           "--out", str(tmp_path / "out")])
    assert code == 0, err.getvalue()
    r = json.loads(out.getvalue())
    assert r["pairs"] == 40 and r["folds"] == 10 and r["images"] <= 12 and r["header"] == [10, 2]
    assert 0.0 <= r["accuracy"] <= 1.0 and len(r["fold_accuracy"]) == 10
    assert Path(r["files"]["roc"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A missing image is named.
    (tmp_path / "lfw" / people[0] / f"{people[0]}_0001.jpg").unlink()
    with redirect_stdout(io.StringIO()), redirect_stderr(err := io.StringIO()):
        code = sketchface(["eval-pairs", str(tmp_path / "pairs.txt"), str(tmp_path / "lfw")])
    assert code == 1 and f"Image 1 of {people[0]} is missing" in err.getvalue()
