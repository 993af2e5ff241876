"""Sketch attributes: OpenCLIP zero-shot (tiny real model), confidences, prompt pre-fill, edit choice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelMissing
from engine.generate.attributes import (
    OPTIONS,
    AttributeModel,
    AttributeScore,
    SketchAttributes,
    prompt_from_attributes,
)
from engine.generate.model_set import ATTRIBUTES, ModelLocator
from engine.generate.variations import edits_for
from tests.fixtures import tiny_diffusion


@pytest.fixture(scope="session")
def gen_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_diffusion.session_models(request, tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    with tiny_diffusion.one_thread():
        yield


def attrs(confidence: float = 0.9, **values: str) -> SketchAttributes:
    scores = {}
    for name, value in values.items():
        others = [o for o in OPTIONS[name] if o != value]
        probs = {value: confidence, **{o: (1 - confidence) / len(others) for o in others}}
        scores[name] = AttributeScore(name, value, confidence, probs)
    return SketchAttributes(scores, model="test")


def sketch() -> np.ndarray:
    img = np.full((96, 96, 3), 235, np.uint8)
    img[30:36, 25:70] = 20  # eyebrows-ish strokes
    img[60:64, 35:60] = 30
    return img


def test_zero_shot_on_the_sketch_gives_a_distribution_per_attribute(gen_models: Path) -> None:
    model = AttributeModel.from_models(locator=ModelLocator(gen_models), device="cpu")
    result = model.predict(sketch())
    assert set(result.scores) == set(OPTIONS)
    for name, score in result.scores.items():
        assert set(score.probabilities) == set(OPTIONS[name])
        assert sum(score.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert score.confidence == pytest.approx(max(score.probabilities.values()))
        assert score.probabilities[score.value] == score.confidence
    assert result.model == ATTRIBUTES
    again = model.predict(sketch())
    assert again.to_dict() == result.to_dict()
    other = model.predict(np.full((96, 96, 3), 30, np.uint8))
    assert other.to_dict()["scores"] != result.to_dict()["scores"]  # the image matters


def test_attribute_model_is_configurable_by_folder(gen_models: Path) -> None:
    model = AttributeModel.from_folder(gen_models / ATTRIBUTES, device="cpu", name="custom-clip")
    assert model.predict(sketch()).model == "custom-clip"
    with pytest.raises(ModelMissing, match="sketch attributes"):
        AttributeModel.from_models("open_clip.vit_b_32_laion2b", locator=ModelLocator(gen_models / "nowhere"))


def test_prompt_states_only_confident_attributes() -> None:
    sure = attrs(0.9, sex="male", age="40s", hair="short hair", facial_hair="beard", glasses="glasses")
    prompt = prompt_from_attributes(sure)
    assert prompt.startswith("RAW photo, portrait of a man in his forties, short hair, beard, wearing glasses")
    unsure = attrs(0.4, sex="female", age="20s", hair="bald", facial_hair="clean-shaven", glasses="glasses")
    vague = prompt_from_attributes(unsure)
    assert vague.startswith("RAW photo, portrait of a person, neutral expression")
    assert "glasses" not in vague and "bald" not in vague
    assert prompt_from_attributes(None).startswith("RAW photo, portrait of a person")
    assert "over sixty" in prompt_from_attributes(attrs(0.8, age="60+"))


def test_examiner_overrides_win() -> None:
    a = attrs(0.9, sex="male", glasses="no glasses").with_overrides(glasses="glasses", sex="female")
    assert a.has_glasses and not a.is_male
    assert "woman" in prompt_from_attributes(a) and "wearing glasses" in prompt_from_attributes(a)
    with pytest.raises(ValueError, match="Unknown attribute"):
        a.with_overrides(glasses="monocle")


def test_edits_change_what_the_sketch_shows() -> None:
    bearded = attrs(0.9, sex="male", glasses="glasses", hair="bald", facial_hair="beard")
    assert [e.name for e in edits_for(bearded)] == ["remove_glasses", "shave", "add_hair", "incognito", "older"]
    plain_man = attrs(0.9, sex="male", glasses="no glasses", hair="short hair", facial_hair="clean-shaven")
    assert [e.name for e in edits_for(plain_man)] == ["add_glasses", "add_beard", "bald", "incognito", "older"]
    woman = attrs(0.9, sex="female", glasses="no glasses", hair="long hair", facial_hair="clean-shaven")
    assert "add_beard" not in [e.name for e in edits_for(woman)]
    assert [e.name for e in edits_for({"has_glasses": True}, include=["incognito"])] == ["incognito"]
    with pytest.raises(ValueError, match="Unknown edits"):
        edits_for(None, include=["moustache_wax"])
