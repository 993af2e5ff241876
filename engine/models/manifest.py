"""The manifest of every model the product uses: what it is, which files, how to check and get them.

Models are the user's to supply (licences differ and several forbid redistribution): the app finds
them under ``paths.models_dir()/<model id>/``, verifies them by SHA-256 where the digest is known,
downloads them on a machine with internet, or imports an offline bundle. A digest that is not known
in advance is pinned on first import (``models.lock.json``) so that later tampering is detected.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, relative to the model's folder.

    Attributes:
        path: relative path inside the model folder (POSIX separators).
        sha256: expected digest, or None when not known in advance (pinned on first import).
        url: where to download it from (None: import only).
        size: expected size in bytes, when known (for progress and disk checks).
        optional: the model works without it.
    """

    path: str
    sha256: str | None = None
    url: str | None = None
    size: int | None = None
    optional: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A model the product can use.

    Attributes:
        id: stable identifier, also the folder name under the models dir.
        title: human-readable name.
        task: what the product uses it for ("detection", "recognition", "sketch-encoder",
            "diffusion-base", "vae", "ip-adapter", "image-encoder", "controlnet", "editing").
        files: the files that make up the model.
        licence: licence summary shown to the user before download/import.
        source: where it comes from (project page).
        required_for: features that need it (shown in the first-run guide).
        input_size: (width, height) of the network input, where it has one.
        mean, std: input normalisation per channel (recorded here rather than guessed from the graph).
        notes: anything else the user should know.
    """

    id: str
    title: str
    task: str
    files: tuple[ModelFile, ...]
    licence: str
    source: str
    required_for: tuple[str, ...] = ()
    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def primary(self) -> ModelFile:
        return self.files[0]


_BUFFALO = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"
_INSIGHTFACE_LICENCE = (
    "InsightFace buffalo_l models: non-commercial research use only (see the InsightFace model licence); "
    "commercial use needs a licence from InsightFace."
)
_HF = "https://huggingface.co"

MODELS: dict[str, ModelSpec] = {}


def _add(spec: ModelSpec) -> None:
    MODELS[spec.id] = spec


_add(ModelSpec(
    id="buffalo_l.det_10g",
    title="SCRFD-10G face detector (InsightFace buffalo_l)",
    task="detection",
    files=(ModelFile("det_10g.onnx", url=f"{_BUFFALO}#det_10g.onnx"),),
    licence=_INSIGHTFACE_LICENCE,
    source="https://github.com/deepinsight/insightface/tree/master/python-package",
    required_for=("gallery import", "photo search", "identity check"),
    input_size=(640, 640),
    mean=(127.5, 127.5, 127.5),
    std=(128.0, 128.0, 128.0),
    notes="Part of buffalo_l.zip; import the zip or its folder.",
))
_add(ModelSpec(
    id="buffalo_l.w600k_r50",
    title="ArcFace R50 recognizer, WebFace600K (InsightFace buffalo_l)",
    task="recognition",
    files=(ModelFile("w600k_r50.onnx", url=f"{_BUFFALO}#w600k_r50.onnx"),),
    licence=_INSIGHTFACE_LICENCE,
    source="https://github.com/deepinsight/insightface/tree/master/python-package",
    required_for=("gallery import", "photo search", "sketch search", "reconstruction"),
    input_size=(112, 112),
    mean=(127.5, 127.5, 127.5),
    std=(127.5, 127.5, 127.5),
    notes="The sketch encoder is trained against this exact file; a different file breaks compatibility.",
))
_add(ModelSpec(
    id="sketch_encoder",
    title="SketchFace sketch encoder (OpenCLIP image tower + projection to ArcFace space)",
    task="sketch-encoder",
    files=(
        ModelFile("model.safetensors"),
        ModelFile("config.json"),
        ModelFile("model.onnx", optional=True),
    ),
    licence="Trained by your agency with the SketchFace trainer; its licence follows your training data.",
    source="python -m trainer train (see README, 'Training the sketch encoder')",
    required_for=("sketch search (without it, a clearly labelled ArcFace baseline is used)",),
    input_size=(224, 224),
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
))
_add(ModelSpec(
    id="sd15.realistic_vision_v4",
    title="Realistic Vision V4.0 (noVAE), Stable Diffusion 1.5 base",
    task="diffusion-base",
    files=(
        ModelFile("model_index.json", url=f"{_HF}/SG161222/Realistic_Vision_V4.0_noVAE/resolve/main/model_index.json"),
        ModelFile("unet/diffusion_pytorch_model.safetensors"),
        ModelFile("unet/config.json"),
        ModelFile("text_encoder/model.safetensors"),
        ModelFile("text_encoder/config.json"),
        ModelFile("tokenizer/vocab.json"),
        ModelFile("tokenizer/merges.txt"),
        ModelFile("tokenizer/tokenizer_config.json", optional=True),
        ModelFile("tokenizer/special_tokens_map.json", optional=True),
        ModelFile("scheduler/scheduler_config.json"),
    ),
    licence="CreativeML Open RAIL-M (use restrictions apply).",
    source=f"{_HF}/SG161222/Realistic_Vision_V4.0_noVAE",
    required_for=("reconstruction",),
    input_size=(512, 512),
))
_add(ModelSpec(
    id="sd15.vae_ft_mse",
    title="Stable Diffusion VAE ft-MSE",
    task="vae",
    files=(
        ModelFile("diffusion_pytorch_model.safetensors",
                  url=f"{_HF}/stabilityai/sd-vae-ft-mse/resolve/main/diffusion_pytorch_model.safetensors"),
        ModelFile("config.json", url=f"{_HF}/stabilityai/sd-vae-ft-mse/resolve/main/config.json"),
    ),
    licence="MIT.",
    source=f"{_HF}/stabilityai/sd-vae-ft-mse",
    required_for=("reconstruction",),
))
_add(ModelSpec(
    id="ip_adapter.faceid_sd15",
    title="IP-Adapter FaceID (SD 1.5)",
    task="ip-adapter",
    files=(ModelFile("ip-adapter-faceid_sd15.bin",
                     url=f"{_HF}/h94/IP-Adapter-FaceID/resolve/main/ip-adapter-faceid_sd15.bin"),),
    licence="Non-commercial research use (follows the InsightFace model licence).",
    source=f"{_HF}/h94/IP-Adapter-FaceID",
    required_for=("reconstruction",),
))
_add(ModelSpec(
    id="ip_adapter.faceid_plusv2_sd15",
    title="IP-Adapter FaceID Plus v2 (SD 1.5)",
    task="ip-adapter",
    files=(ModelFile("ip-adapter-faceid-plusv2_sd15.bin",
                     url=f"{_HF}/h94/IP-Adapter-FaceID/resolve/main/ip-adapter-faceid-plusv2_sd15.bin"),),
    licence="Non-commercial research use (follows the InsightFace model licence).",
    source=f"{_HF}/h94/IP-Adapter-FaceID",
    required_for=("reconstruction with structure guidance (FaceID Plus)",),
))
_add(ModelSpec(
    id="clip.vit_h_14_image_encoder",
    title="CLIP ViT-H/14 image encoder (LAION-2B) for FaceID Plus",
    task="image-encoder",
    files=(
        ModelFile("model.safetensors",
                  url=f"{_HF}/laion/CLIP-ViT-H-14-laion2B-s32B-b79K/resolve/main/model.safetensors"),
        ModelFile("config.json", url=f"{_HF}/laion/CLIP-ViT-H-14-laion2B-s32B-b79K/resolve/main/config.json"),
    ),
    licence="MIT.",
    source=f"{_HF}/laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
    required_for=("reconstruction with structure guidance (FaceID Plus)",),
))
_add(ModelSpec(
    id="controlnet.lineart_sd15",
    title="ControlNet v1.1 lineart (SD 1.5)",
    task="controlnet",
    files=(
        ModelFile("diffusion_pytorch_model.safetensors",
                  url=f"{_HF}/lllyasviel/control_v11p_sd15_lineart/resolve/main/diffusion_pytorch_model.safetensors"),
        ModelFile("config.json", url=f"{_HF}/lllyasviel/control_v11p_sd15_lineart/resolve/main/config.json"),
    ),
    licence="CreativeML Open RAIL-M.",
    source=f"{_HF}/lllyasviel/control_v11p_sd15_lineart",
    required_for=("structure-following reconstruction",),
))
_add(ModelSpec(
    id="instruct_pix2pix",
    title="InstructPix2Pix instruction-based editor",
    task="editing",
    files=(
        ModelFile("model_index.json", url=f"{_HF}/timbrooks/instruct-pix2pix/resolve/main/model_index.json"),
        ModelFile("unet/diffusion_pytorch_model.safetensors"),
        ModelFile("unet/config.json"),
        ModelFile("vae/diffusion_pytorch_model.safetensors"),
        ModelFile("vae/config.json"),
        ModelFile("text_encoder/model.safetensors"),
        ModelFile("text_encoder/config.json"),
        ModelFile("tokenizer/vocab.json"),
        ModelFile("tokenizer/merges.txt"),
        ModelFile("scheduler/scheduler_config.json"),
    ),
    licence="MIT (weights: CreativeML Open RAIL-M).",
    source=f"{_HF}/timbrooks/instruct-pix2pix",
    required_for=("disguise and appearance variations",),
    input_size=(512, 512),
))
