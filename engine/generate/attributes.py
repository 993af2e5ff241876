"""Sketch attributes (sex, age range, hair, facial hair, glasses) read locally by OpenCLIP zero-shot.

Why local: the seed asked a cloud multimodal model, which sends the sketch off the machine. CLIP
zero-shot runs on the workstation, gives a confidence per attribute (the softmax over the attribute's
options), and its answers only pre-fill an editable prompt and choose which edits make sense — an
uncertain attribute is left out of the prompt rather than guessed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import runtime
from engine.errors import InvalidRequest
from engine.generate import memory
from engine.generate.imaging import to_pil_rgb
from engine.generate.model_set import ATTRIBUTES, ModelLocator, loading_checked
from engine.generate.types import ImageInput

# attribute -> option -> phrases describing a person with it (averaged over phrases and templates).
OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "sex": {"male": ("a man",), "female": ("a woman",)},
    "age": {
        "20s": ("a young adult in their twenties",),
        "30s": ("an adult in their thirties",),
        "40s": ("a middle-aged adult in their forties",),
        "50s": ("an adult in their fifties",),
        "60+": ("an elderly person over sixty",),
    },
    "hair": {"bald": ("a bald person", "a person with a shaved head"), "short hair": ("a person with short hair",),
             "long hair": ("a person with long hair",)},
    "facial_hair": {"beard": ("a person with a full beard",), "moustache": ("a person with a moustache",),
                    "clean-shaven": ("a clean-shaven person",)},
    "glasses": {"glasses": ("a person wearing glasses",), "no glasses": ("a person without glasses",)},
}
TEMPLATES = ("a pencil sketch of {}.", "a forensic composite drawing of {}.", "a black and white drawing of {}.")
PROMPT_TAIL = ("neutral expression, looking at the camera, plain light grey background, natural skin texture, "
               "soft studio lighting, sharp focus, high detail")


@dataclass(frozen=True)
class AttributeScore:
    """The most likely option of one attribute, its confidence and the whole distribution."""

    name: str
    value: str
    confidence: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class SketchAttributes:
    """What the sketch shows, per attribute; ``model`` names the classifier that said so."""

    scores: dict[str, AttributeScore]
    model: str = ""
    overrides: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, min_confidence: float = 0.0) -> str | None:
        """The attribute's value (a user override wins), or None when below ``min_confidence``."""
        if name in self.overrides:
            return self.overrides[name]
        score = self.scores.get(name)
        return score.value if score is not None and score.confidence >= min_confidence else None

    def with_overrides(self, **values: str) -> SketchAttributes:
        """A copy where the examiner's corrections replace the classifier's answers."""
        for name, value in values.items():
            if name not in OPTIONS or value not in OPTIONS[name]:
                raise InvalidRequest(f"Unknown attribute value {name}={value!r}.")
        return SketchAttributes(self.scores, self.model, {**self.overrides, **values})

    # The four flags the seed's variation step used.
    @property
    def is_male(self) -> bool:
        return self.value("sex") == "male"

    @property
    def has_glasses(self) -> bool:
        return self.value("glasses") == "glasses"

    @property
    def is_bald(self) -> bool:
        return self.value("hair") == "bald"

    @property
    def has_facial_hair(self) -> bool:
        return self.value("facial_hair") in ("beard", "moustache")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "overrides": dict(self.overrides),
            "scores": {n: {"value": s.value, "confidence": round(s.confidence, 4),
                           "probabilities": {k: round(v, 4) for k, v in s.probabilities.items()}}
                       for n, s in self.scores.items()},
        }


_AGE_WORDS = {"20s": "twenties", "30s": "thirties", "40s": "forties", "50s": "fifties"}


def prompt_from_attributes(attrs: SketchAttributes | None, min_confidence: float = 0.5,
                           tail: str = PROMPT_TAIL) -> str:
    """A neutral photographic prompt from the attributes confident enough to state (editable by the user)."""
    if attrs is None:
        return f"RAW photo, portrait of a person, {tail}"
    get = lambda n: attrs.value(n, min_confidence)  # noqa: E731 - local shorthand
    sex = get("sex")
    noun = {"male": "man", "female": "woman"}.get(sex or "", "person")
    pron = {"male": "his", "female": "her"}.get(sex or "", "their")
    parts = [f"RAW photo, portrait of a {noun}"]
    age = get("age")
    if age == "60+":
        parts[0] += " over sixty"
    elif age in _AGE_WORDS:
        parts[0] += f" in {pron} {_AGE_WORDS[age]}"
    hair = get("hair")
    if hair:
        parts.append(hair if hair != "bald" else "bald head")
    facial = get("facial_hair")
    if facial:
        parts.append(facial)
    if get("glasses") == "glasses":
        parts.append("wearing glasses")
    parts.append(tail)
    return ", ".join(parts)


def placement(preference: str = "auto") -> str:
    """Where the attribute model runs: in fp16 on the GPU only when the memory plan keeps everything
    resident; else on the CPU (one image per sketch: ~0.1 s there), leaving the GPU to diffusion."""

    device = runtime.resolve_device(preference)
    if device != "cuda" or preference == "cuda":
        return device
    return memory.choose(device).attributes_device


class AttributeModel:
    """OpenCLIP zero-shot attribute classifier.

    Args:
        model, tokenizer, preprocess: an OpenCLIP model, its tokenizer and image transform.
        device: torch device string.
        name: what to record as the classifier (model id).
    """

    def __init__(self, model: Any, tokenizer: Any, preprocess: Any, device: str, name: str) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.device = device
        self.name = name
        self._text: dict[str, tuple[list[str], Any]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "auto", name: str | None = None) -> AttributeModel:
        """Load an OpenCLIP model folder (``open_clip_config.json`` + weights, as on LAION's hub pages)."""
        import open_clip

        dev_name = placement(device)
        ref = f"local-dir:{Path(folder)}"
        model, _, preprocess = open_clip.create_model_and_transforms(
            ref, device=dev_name, precision="fp16" if dev_name == "cuda" else "fp32")
        return cls(model, open_clip.get_tokenizer(ref), preprocess, dev_name, name or Path(folder).name)

    @classmethod
    def from_models(cls, model_id: str = ATTRIBUTES, locator: ModelLocator | None = None,
                    device: str = "auto") -> AttributeModel:
        """Load the installed attribute model (any OpenCLIP model id of the manifest; ModelMissing if absent).

        open_clip loads by path, so the load is watched: a file replaced meanwhile refuses the model.
        """
        loc = locator or ModelLocator()
        folder = loc.require(model_id, "sketch attributes")
        with loading_checked(loc, model_id):
            model = cls.from_folder(folder, device=device, name=model_id)
        return model

    def _text_features(self) -> dict[str, tuple[list[str], Any]]:
        import torch

        with self._lock:
            if self._text is None:
                feats = {}
                with torch.no_grad():
                    for attr, options in OPTIONS.items():
                        rows = []
                        for phrases in options.values():
                            texts = [t.format(p) for p in phrases for t in TEMPLATES]
                            emb = self.model.encode_text(self.tokenizer(texts).to(self.device))
                            emb = torch.nn.functional.normalize(emb.float(), dim=-1).mean(0)
                            rows.append(torch.nn.functional.normalize(emb, dim=0))
                        feats[attr] = (list(options), torch.stack(rows))
                self._text = feats
            return self._text

    def predict(self, sketch: ImageInput) -> SketchAttributes:
        """Classify every attribute of the sketch; confidences are softmax probabilities."""
        import torch

        text = self._text_features()
        dtype = next(self.model.parameters()).dtype
        pixels = self.preprocess(to_pil_rgb(sketch)).unsqueeze(0).to(self.device, dtype=dtype)
        with torch.no_grad():
            img = torch.nn.functional.normalize(self.model.encode_image(pixels).float(), dim=-1)[0]
            scale = float(self.model.logit_scale.exp()) if hasattr(self.model, "logit_scale") else 100.0
        scores = {}
        for attr, (names, feats) in text.items():
            probs = torch.softmax(scale * (feats @ img), dim=0).cpu().numpy().astype(np.float64)
            best = int(np.argmax(probs))
            scores[attr] = AttributeScore(attr, names[best], float(probs[best]),
                                          {n: float(p) for n, p in zip(names, probs, strict=True)})
        return SketchAttributes(scores=scores, model=self.name)


def flags(attrs: SketchAttributes | Mapping[str, bool] | None) -> dict[str, bool]:
    """The seed's four booleans from attributes (or a mapping with those keys; missing keys are False)."""
    if attrs is None:
        return {"is_male": False, "has_glasses": False, "is_bald": False, "has_facial_hair": False}
    if isinstance(attrs, SketchAttributes):
        return {"is_male": attrs.is_male, "has_glasses": attrs.has_glasses, "is_bald": attrs.is_bald,
                "has_facial_hair": attrs.has_facial_hair}
    return {k: bool(attrs.get(k, False)) for k in ("is_male", "has_glasses", "is_bald", "has_facial_hair")}
