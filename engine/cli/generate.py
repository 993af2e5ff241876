"""``sketchface reconstruct`` and ``sketchface vary``: generation headless.

Outputs are PNGs with their provenance embedded; a table (or ``--json``) lists paths, seeds, identity
scores and SHA-256s on stdout, progress goes to stderr. Replicate runs only with ``--enable-replicate``
and after the upload warning is accepted (``--yes`` or an answer on the terminal).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from engine import settings
from engine.cli.output import print_json
from engine.errors import BadImage, InvalidRequest
from engine.faces.decode import load_image
from engine.fsutil import atomic_write_bytes, sha256_file
from engine.generate.attributes import AttributeModel, prompt_from_attributes
from engine.generate.memory import runtime_options
from engine.generate.reconstruct import Reconstructor
from engine.generate.replicate_backend import ReplicateBackend, ReplicateConfig
from engine.generate.types import ReconstructionRequest
from engine.generate.variations import EditOptions, LocalEditor, edits_for, run_variations
from engine.progress import ProgressEvent
from engine.sketch.embedder import embed_sketch, load_sketch_embedder
from engine.sketch.preprocess import crop_sketch


class _Steps:
    """Engine progress -> a tqdm step bar on stderr (hidden when stderr is not a terminal)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, event: ProgressEvent) -> None:
        if self._bar is None or (event.total and self._bar.total != event.total):
            self.close()
            self._bar = tqdm(total=event.total or None, unit="step", file=sys.stderr, disable=None, leave=False)
        self._bar.set_description_str(event.message[-48:], refresh=False)
        self._bar.update(max(0, event.done - self._bar.n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _image(path: str | None) -> np.ndarray | None:
    if path is None:
        return None

    return load_image(path)


def _embedding(path: str) -> np.ndarray:
    try:
        vec = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BadImage(f"Cannot read the embedding {path}: {exc}",
                       hint="Pass a .npy file holding the sketch's 512-D embedding.") from exc
    vec = np.asarray(vec, dtype=np.float32).reshape(-1)
    if vec.shape != (512,):
        raise BadImage(f"{path} holds {vec.size} numbers, not a 512-D embedding.")
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


def _sketch_embedding(sketch: np.ndarray, device: str,
                      face_box: tuple[float, float, float, float] | None = None) -> tuple[np.ndarray, dict[str, str], Any]:
    """The sketch's 512-D embedding through the installed sketch embedder, what embedded it, and its crop config.

    Why record it: with no trained sketch encoder the ArcFace baseline embeds the drawing, a much
    weaker description of the face; the provenance of every output has to say which one drove it.
    The crop is ``engine.sketch``'s (``embed_sketch``), the same as a search of the same sketch and box.
    """
    embedder = load_sketch_embedder(device)
    vec = embed_sketch(embedder, sketch, face_box)
    info = {"embedding_from": "sketch", "sketch_embedder": str(embedder.backend),
            "sketch_embedder_baseline": "true" if embedder.is_baseline else "false"}
    if embedder.model_sha256:
        info["sketch_embedder_sha256"] = str(embedder.model_sha256)
    return vec, info, getattr(embedder, "preprocess_config", None)


def _face_box(text: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X1,Y1,X2,Y2 (pixels of the sketch), got {text!r}") from None
    return x1, y1, x2, y2


def _runtime(args: argparse.Namespace) -> Any:
    """Runtime options: the user's Settings > Generation, overridden by the flags given."""
    plan = "model_offload" if args.offload and args.memory_plan is None else args.memory_plan
    return runtime_options(
        settings.load(), allow_cpu=args.allow_cpu, device=args.device, memory_plan=plan,
        vae_tiling=args.vae_tiling, vram_budget_gb=args.vram_budget_gb,
        half_precision=False if args.fp32 else None, compile_unet=True if args.compile else None,
        safety_checker=False if args.no_safety_checker else None)


def _attributes(sketch: np.ndarray | None, args: argparse.Namespace) -> Any:
    if sketch is None:
        return None
    attrs = AttributeModel.from_models(device=args.device).predict(sketch)
    overrides = dict(args.set or [])
    return attrs.with_overrides(**overrides) if overrides else attrs


def _attr_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected ATTR=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _usage_errors(handler: Any) -> Any:
    """Report invalid values (size not a multiple of 8, unknown edit...) as a usage error, exit code 2."""
    def run(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


def _reconstruct(args: argparse.Namespace) -> int:
    sketch = _image(args.sketch)
    if args.structure and sketch is None:
        raise BadImage("--structure needs --sketch (the drawing whose lines the face should follow).")
    sources = {"sketch_sha256": sha256_file(args.sketch)} if args.sketch else {}
    crop_cfg = None
    if args.embedding:
        embedding, embedded = _embedding(args.embedding), {"embedding_from": "file"}
    elif sketch is not None:
        embedding, embedded, crop_cfg = _sketch_embedding(sketch, args.device, args.face_box)
    else:
        raise InvalidRequest("give --embedding (a .npy file) or --sketch (an image to embed).")
    sources.update(embedded)
    if sketch is not None and args.face_box is not None:  # the guide's square, cropped as search crops it

        sketch = crop_sketch(sketch, args.face_box, crop_cfg)
        sources["sketch_face_box"] = ",".join(f"{v:g}" for v in args.face_box)
    prompt = args.prompt or prompt_from_attributes(_attributes(sketch, args))
    request = ReconstructionRequest(
        embedding=embedding, prompt=prompt, num_candidates=args.candidates, seed=args.seed,
        steps=args.steps, guidance_scale=args.guidance, width=args.width, height=args.height,
        likeness_strength=args.likeness, face_image=_image(args.face), face_strength=args.face_strength,
        structure_image=sketch if args.structure else None, structure_strength=args.structure_strength,
        mark=not args.no_mark, sources=sources,
        **({"negative_prompt": args.negative_prompt} if args.negative_prompt else {}))
    rec = Reconstructor(runtime=_runtime(args), identity=None if args.no_identity else "auto")
    bar = _Steps()
    try:
        result = rec.reconstruct(request, progress=bar)
    finally:
        bar.close()
    out = Path(args.out)
    rows = []
    for rank, cand in enumerate(result.candidates, 1):
        path = out / f"candidate_{rank:02d}_seed{cand.seed}.png"
        rows.append({"rank": rank, "path": str(path), "seed": cand.seed, "identity_score": cand.identity_score,
                     "sha256": cand.save(path), "synthetic": True})
    control = None
    if result.control_image is not None:  # what the ControlNet followed, for the examiner to look at

        buf = io.BytesIO()
        result.control_image.save(buf, format="PNG")
        control = out / "structure_lines.png"
        atomic_write_bytes(control, buf.getvalue())
    baseline = embedded.get("sketch_embedder_baseline") == "true"
    plan = dict(result.memory_plan)
    if args.json:
        print_json({"prompt": prompt, "embedding": {"from": embedded["embedding_from"], "baseline": baseline},
                    "mode": result.mode, "structure": result.structure, "device": result.device,
                    "seconds": round(result.seconds, 2), "identity_note": result.identity_note, "candidates": rows,
                    "control_image": str(control) if control else None, "memory_plan": plan})
        return 0
    print(f"Prompt: {prompt}\nMode: {result.mode}{' + structure' if result.structure else ''} on {result.device}, "
          f"{result.seconds:.1f} s. SYNTHETIC images: investigative aid only.")
    if plan.get("placement") not in (None, "cpu"):
        print(f"GPU memory plan: {plan['placement']} ({plan.get('reason', '')})")
    if control is not None:
        print(f"Structure lines the ControlNet followed: {control}")
    if baseline:
        print("BASELINE: no trained sketch encoder is installed; ArcFace embedded the sketch itself (weak).")
    if result.identity_note:
        print(result.identity_note)
    for r in rows:
        score = "   -  " if r["identity_score"] is None else f"{r['identity_score']:.3f}"
        print(f"{r['rank']:>3}  identity {score}  seed {r['seed']:<10}  {r['path']}")
    return 0


def _confirm(assume_yes: bool) -> Any:
    def confirm(notice: Any) -> bool:
        print(f"WARNING: {notice.message}", file=sys.stderr)
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            print("Not confirmed (no terminal; pass --yes to accept).", file=sys.stderr)
            return False
        return input("Upload? [y/N] ").strip().lower() in ("y", "yes")

    return confirm


def _vary(args: argparse.Namespace) -> int:
    image = _image(args.image)
    assert image is not None
    edits = edits_for(_attributes(_image(args.sketch), args),
                      include=args.edits.split(",") if args.edits else None)
    if args.backend == "replicate":
        config = ReplicateConfig(**({"model": args.replicate_model} if args.replicate_model else {}),
                                 timeout_s=args.timeout)
        backend: Any = ReplicateBackend(enabled=args.enable_replicate, confirm_upload=_confirm(args.yes),
                                        config=config)
    else:
        backend = LocalEditor(runtime=_runtime(args), options=EditOptions(steps=args.steps, size=args.size))
    sources = {"base_image_file_sha256": sha256_file(args.image)}
    bar = _Steps()
    try:
        report = run_variations(image, edits, backend, seed=args.seed, progress=bar, mark=not args.no_mark,
                                sources=sources)
    finally:
        bar.close()
    out = Path(args.out)
    rows = []
    for r in report.results:
        row: dict[str, Any] = {"edit": r.spec.name, "instruction": r.spec.instruction, "error": r.error}
        if r.ok:
            path = out / f"{r.spec.name}.png"
            row.update(path=str(path), sha256=r.save(path), seed=r.provenance.get("seed"), synthetic=True)
        rows.append(row)
    if args.json:
        print_json({"backend": report.backend, "remote": report.remote, "variations": rows})
    else:
        for row in rows:
            print(f"{row['edit']:<15} " + (row.get("path") or f"FAILED: {row['error']}"))
    return 0 if not report.failed else 2


def _runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    p.add_argument("--allow-cpu", action="store_true", help="run even without a GPU (can take many minutes)")
    p.add_argument("--fp32", action="store_true", help="full precision on CUDA (default fp16)")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet (CUDA)")
    p.add_argument("--offload", action="store_true", help="model CPU offload (same as --memory-plan model_offload)")
    p.add_argument("--memory-plan", choices=("auto", "resident", "model_offload", "sequential_offload"),
                   help="GPU memory plan (default: Settings > Generation; auto chooses from free VRAM)")
    p.add_argument("--vae-tiling", nargs="?", const="on", choices=("auto", "on", "off"),
                   help="decode in tiles (default auto: above 768 px)")
    p.add_argument("--vram-budget-gb", type=float, help="use at most this much GPU memory for the plan")
    p.add_argument("--no-safety-checker", action="store_true",
                   help="skip the safety checker (recorded in each image's provenance)")
    p.add_argument("--no-mark", action="store_true", help="omit the visible SYNTHETIC band (metadata stays)")
    p.add_argument("--set", action="append", type=_attr_pair, metavar="ATTR=VALUE",
                   help="correct a sketch attribute, e.g. --set glasses=glasses --set sex=female")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--out", required=True, help="folder for the PNGs")


def register(subparsers: Any) -> None:
    """Add ``reconstruct`` and ``vary`` to the ``sketchface`` command."""
    p = subparsers.add_parser("reconstruct", help="photorealistic candidates from a sketch embedding (FaceID)")
    p.add_argument("--embedding", help=".npy file with the sketch's 512-D embedding (default: embed --sketch)")
    p.add_argument("--sketch", help="the sketch image: embedded when --embedding is not given (trained sketch "
                                    "encoder, else the labelled ArcFace baseline); pre-fills the prompt; with "
                                    "--structure, guides the lines")
    p.add_argument("--face-box", type=_face_box, metavar="X1,Y1,X2,Y2",
                   help="the face guide on the sketch, in its pixels: the sketch is cropped to it as a search crops it")
    p.add_argument("--face", help="a face image (the sketch or a matched photo) for FaceID Plus v2")
    p.add_argument("--structure", action="store_true", help="follow the sketch's lines (ControlNet lineart)")
    p.add_argument("--prompt", help="text prompt (default: from the sketch's attributes)")
    p.add_argument("--negative-prompt")
    p.add_argument("-n", "--candidates", type=int, default=4)
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--likeness", type=float, default=1.1, help="IP-Adapter scale (likeness strength)")
    p.add_argument("--face-strength", type=float, default=1.6, help="FaceID Plus v2 structure strength")
    p.add_argument("--structure-strength", type=float, default=0.8, help="ControlNet conditioning scale")
    p.add_argument("--no-identity", action="store_true", help="skip the ArcFace identity check")
    _runtime_flags(p)
    p.set_defaults(func=_usage_errors(_reconstruct))

    v = subparsers.add_parser("vary", help="disguise/appearance variations of a face (local by default)")
    v.add_argument("image", help="the face to vary (a candidate or a matched photo)")
    v.add_argument("--sketch", help="the sketch: chooses context-aware edits from its attributes")
    v.add_argument("--edits", help="comma-separated edit names (default: chosen from the sketch)")
    v.add_argument("--backend", choices=("local", "replicate"), default="local")
    v.add_argument("--enable-replicate", action="store_true", help="switch the Replicate backend on (uploads!)")
    v.add_argument("--yes", action="store_true", help="accept the upload warning without asking")
    v.add_argument("--replicate-model", help="owner/name of the Replicate editing model")
    v.add_argument("--timeout", type=float, default=180.0, help="seconds per remote edit")
    v.add_argument("--seed", type=int)
    v.add_argument("--steps", type=int, default=20)
    v.add_argument("--size", type=int, default=512, help="working size of the local editor (long side)")
    _runtime_flags(v)
    v.set_defaults(func=_usage_errors(_vary))
