"""``sketchface validate``, ``eval-pairs`` and ``validate-reconstruction``: how well it works, measured here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from engine.cli.console import progress_bar, sigint_cancels
from engine.cli.output import print_json
from engine.fsutil import atomic_write_bytes
from engine.validate import calibration, validate, write_outputs
from engine.validate.pairs import eval_pairs
from engine.validate.plots import roc_png
from engine.validate.reconstruction import identity_check, identity_png

CASES_LAYOUT = """\
CASES_DIR layout:
  CASES_DIR/sketches/   one sketch per solved case; the file stem names the case (case017.png)
                        (without sketches/, the images directly in CASES_DIR are the sketches)
  CASES_DIR/truth.csv   optional: columns case,subject_id (subject id as in the gallery metadata)
  CASES_DIR/photos/     optional: photos/<case>.jpg, a photo of the true person that is in the gallery
                        (matched by SHA-256; its subject id, or that face alone, is the true match)
A case's truth comes from its truth.csv row, else its photos/ file, else a gallery subject id equal to
the sketch's file stem. Cases whose truth is not in the gallery are listed and left out of every figure.
"""


def _validate(args: argparse.Namespace) -> int:
    keys = list(dict.fromkeys(["sex", "age_band", *(args.group_by or [])]))
    with sigint_cancels() as token, progress_bar("Validating", unit="sketch") as bar:
        run = validate(Path(args.cases_dir), args.gallery, encoder=args.encoder, group_keys=keys, progress=bar,
                       cancel=token)
    saved = []
    for name in (run.encoders if args.save_calibration == "all" else [args.save_calibration] if
                 args.save_calibration else []):
        saved.append(str(calibration.save(calibration.fit(run, name))))
    files = write_outputs(run, Path(args.out)) if args.out else {}
    doc = run.to_dict()
    if args.json:
        print_json({**doc, "files": files, "calibration_saved": saved})
        return 0
    g = doc["gallery"]
    print(f"Gallery {g['name']}: {g['subjects']:,} subjects, {g['faces']:,} faces. "
          f"Cases: {doc['cases']['validated']} validated of {doc['cases']['found']}.")
    for note in doc["notes"]:
        print(f"NOTE: {note}", file=sys.stderr)
    for name, enc in doc["encoders"].items():
        print(f"\n{name} encoder (median rank {enc['median_rank']:g}):")
        for r, x in enc["hit_rates"].items():
            print(f"  top {r:>4}: {100 * x['rate']:5.1f} %  (95 % CI {100 * x['low']:.1f}–{100 * x['high']:.1f})"
                  f"  {x['hits']}/{x['n']}")
    for u in doc["cases"]["unresolved"]:
        print(f"left out: {u['case']}: {u['reason']}", file=sys.stderr)
    for path in saved:
        print(f"Calibration stored: {path}")
    for name, path in files.items():
        print(f"{name}: {path}")
    return 0


def _eval_pairs(args: argparse.Namespace) -> int:
    with sigint_cancels() as token, progress_bar("Embedding", unit="image") as bar:
        result = eval_pairs(Path(args.pairs_file), Path(args.images_dir), progress=bar, cancel=token)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        png = roc_png(np.asarray(result["roc"]["far"]), np.asarray(result["roc"]["tar"]),
                      f"ROC on {result['pairs']} pairs: accuracy {100 * result['accuracy']:.2f} %",
                      result["tar_at_far"])
        atomic_write_bytes(out / "roc.png", png)
        atomic_write_bytes(out / "pairs.json", json.dumps(result, indent=1).encode())
        result["files"] = {"roc": str(out / "roc.png"), "json": str(out / "pairs.json")}
    if args.json:
        print_json(result)
        return 0
    print(f"{result['pairs']} pairs in {result['folds']} fold(s), {result['images']} images "
          f"({result['no_face_detected']} without a detected face: centre-cropped).")
    print(f"Accuracy (10-fold threshold): {100 * result['accuracy']:.2f} % ± {100 * result['accuracy_std']:.2f}")
    for k, v in result["tar_at_far"].items():
        print(f"TAR at {k}: " + (f"{100 * v:.2f} %" if v is not None else
                                 f"not measurable with {result['different']} different-person pairs"))
    for model, acc in result["published_lfw_accuracy_percent"].items():
        print(f"Published LFW accuracy of {model}: {acc} % (compare when this is the LFW set and that model).")
    return 0


def _reconstruction(args: argparse.Namespace) -> int:
    with sigint_cancels() as token, progress_bar("Reconstructing", unit="step") as bar:
        result = identity_check(Path(args.sketch_dir), photos_dir=args.photos, candidates=args.candidates,
                                steps=args.steps, size=args.size, seed=args.seed, progress=bar, cancel=token)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "identity.png", identity_png(result))
        atomic_write_bytes(out / "identity.json", json.dumps(result, indent=1).encode())
        result["files"] = {"plot": str(out / "identity.png"), "json": str(out / "identity.json")}
    if args.json:
        print_json(result)
        return 0
    for name, s in result["summary"].items():
        text = f"median {s['median']:.3f} (5–95 %: {s['p05']:.3f}–{s['p95']:.3f})" if s["n"] else "no data"
        print(f"{name.replace('_', ' ')}: n={s['n']}, {text}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``validate``, ``eval-pairs`` and ``validate-reconstruction`` to the ``sketchface`` parser."""
    p = subparsers.add_parser(
        "validate", help="measure search on solved cases: CMC, hit rates, groups, calibration",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Search every solved case's sketch against a gallery and report where the true person "
                    "ranked: the CMC curve, hit rates at ranks 1/10/50/100/200 with 95 % Wilson intervals, "
                    "per-group breakdowns (sex, age band and any --group-by metadata key), score "
                    "distributions, trained encoder and ArcFace baseline side by side.\n\n" + CASES_LAYOUT)
    p.add_argument("cases_dir", metavar="CASES_DIR", help="folder of solved cases (layout below)")
    p.add_argument("--gallery", "-g", required=True, help="gallery name or id")
    p.add_argument("--encoder", choices=("trained", "baseline", "both"), default="both",
                   help="sketch encoder(s) to validate (default both: the trained one when installed)")
    p.add_argument("--group-by", action="append", metavar="KEY",
                   help="another gallery metadata key to break results down by (repeatable)")
    p.add_argument("--out", metavar="DIR", help="write validation.json, cmc/groups/scores.png and validation.pdf")
    p.add_argument("--save-calibration", choices=("trained", "baseline", "all"),
                   help="store this run's score calibration for that encoder (results and reports then show it)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_validate)

    p = subparsers.add_parser(
        "eval-pairs", help="verification accuracy of the installed ArcFace on LFW-style pairs",
        description="Embed the images of an LFW pairs.txt (header 'FOLDS N'; per fold N lines 'name n1 n2' then "
                    "N lines 'name1 n1 name2 n2'; images IMAGES_DIR/name/name_0001.jpg) and report accuracy "
                    "with the 10-fold threshold, the ROC and TAR at FAR 1e-2/1e-3/1e-4.")
    p.add_argument("pairs_file", metavar="PAIRS_FILE")
    p.add_argument("images_dir", metavar="IMAGES_DIR")
    p.add_argument("--out", metavar="DIR", help="write roc.png and pairs.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_eval_pairs)

    p = subparsers.add_parser(
        "validate-reconstruction", help="identity kept by reconstructions over a folder of sketches",
        description="Reconstruct every sketch of a folder and report the ArcFace cosine of each generated face "
                    "to the sketch's embedding and to the true photo (photos/<sketch stem>.jpg) where given.")
    p.add_argument("sketch_dir", metavar="SKETCH_DIR")
    p.add_argument("--photos", metavar="DIR", help="true photos by sketch file stem (default SKETCH_DIR/photos)")
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="write identity.png and identity.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_reconstruction)
