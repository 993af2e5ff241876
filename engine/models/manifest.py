"""The manifest of every model the product uses: what it is, which files, how to check and get them.

Models are the user's to supply (licences differ and several forbid redistribution): the app finds
them under ``paths.models_dir()/<model id>/``, verifies them by SHA-256 where the digest is known,
downloads them on a machine with internet, or imports an offline bundle. A digest that is not known
in advance is pinned on first import (``model_pins.json`` in the config folder, signed with the
workstation key: :mod:`engine.models.digests`) so that later tampering is detected.
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
    source="python -m trainer train, then 'sketchface sketch install RUN_DIR' (see README, 'Training the sketch encoder')",
    required_for=("sketch search (without it, a clearly labelled ArcFace baseline is used)",),
    input_size=(224, 224),
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
    notes=("config.json is authoritative: it carries the architecture, input size, mean/std (the values here "
           "are the default ViT-B-16 build) and the SHA-256 of the ArcFace file the encoder was trained "
           "against; an encoder for another ArcFace file is refused. model.onnx is written by "
           "'sketchface sketch install' / 'export-onnx' after a parity check."),
))
# --- generation models (engine.generate) ---------------------------------------------------------
def _hf_files(repo: str, *paths: str, optional: tuple[str, ...] = ()) -> tuple[ModelFile, ...]:
    """ModelFiles downloadable from a Hugging Face repository's main branch.

    ``main`` moves: these files have no published digest in this manifest, so each is pinned at its
    first import or download (trust on first use) and a later change of the branch is refused then.
    """
    return tuple(ModelFile(p, url=f"{_HF}/{repo}/resolve/main/{p}", optional=p in optional) for p in paths)


_RV4 = "SG161222/Realistic_Vision_V4.0_noVAE"
_add(ModelSpec(
    id="sd15.realistic_vision_v4",
    title="Realistic Vision V4.0 (noVAE), Stable Diffusion 1.5 base",
    task="diffusion-base",
    files=_hf_files(
        _RV4, "model_index.json", "unet/diffusion_pytorch_model.safetensors", "unet/config.json",
        "text_encoder/model.safetensors", "text_encoder/config.json", "tokenizer/vocab.json",
        "tokenizer/merges.txt", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
        "scheduler/scheduler_config.json",
        optional=("tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json"),
    ),
    licence="CreativeML Open RAIL-M (use restrictions apply).",
    source=f"{_HF}/{_RV4}",
    required_for=("reconstruction",),
    input_size=(512, 512),
    notes="Its own VAE folder is not needed: reconstruction decodes with sd15.vae_ft_mse.",
))
_add(ModelSpec(
    id="sd15.vae_ft_mse",
    title="Stable Diffusion VAE ft-MSE",
    task="vae",
    files=_hf_files("stabilityai/sd-vae-ft-mse", "diffusion_pytorch_model.safetensors", "config.json"),
    licence="MIT.",
    source=f"{_HF}/stabilityai/sd-vae-ft-mse",
    required_for=("reconstruction",),
))
# Published digests (Git LFS pointers on the publisher's Hugging Face commits) and URLs pinned to those commits:
# - https://huggingface.co/h94/IP-Adapter-FaceID/commit/1cc4ea2507036f0125999c9fbf142b6b46b050c5
#   "Upload ip-adapter-faceid_sd15.bin": oid sha256:201344e2…8da7, size 96740574
# - https://huggingface.co/h94/IP-Adapter-FaceID/commit/f4b55f9c02032374a432f33cd382c79a54c990d2
#   "Upload ip-adapter-faceid-plusv2_sd15.bin": oid sha256:26d0d86a…e313, size 156558509
_FACEID_REPO = "h94/IP-Adapter-FaceID"
_FACEID_REV = "1cc4ea2507036f0125999c9fbf142b6b46b050c5"
_FACEID_PLUS_REV = "f4b55f9c02032374a432f33cd382c79a54c990d2"
_add(ModelSpec(
    id="ip_adapter.faceid_sd15",
    title="IP-Adapter FaceID (SD 1.5)",
    task="ip-adapter",
    files=(ModelFile("ip-adapter-faceid_sd15.bin",
                     sha256="201344e22e6f55849cf07ca7a6e53d8c3b001327c66cb9710d69fd5da48a8da7", size=96740574,
                     url=f"{_HF}/{_FACEID_REPO}/resolve/{_FACEID_REV}/ip-adapter-faceid_sd15.bin"),),
    licence="Non-commercial research use (follows the InsightFace model licence).",
    source=f"{_HF}/h94/IP-Adapter-FaceID",
    required_for=("reconstruction",),
    notes="Holds its LoRA in the same file; the 'peft' package must be installed for it to be applied.",
))
_add(ModelSpec(
    id="ip_adapter.faceid_plusv2_sd15",
    title="IP-Adapter FaceID Plus v2 (SD 1.5)",
    task="ip-adapter",
    files=(ModelFile("ip-adapter-faceid-plusv2_sd15.bin",
                     sha256="26d0d86a1d60d6cc811d3b8862178b461e1eeb651e6fe2b72ba17aa95411e313", size=156558509,
                     url=f"{_HF}/{_FACEID_REPO}/resolve/{_FACEID_PLUS_REV}/ip-adapter-faceid-plusv2_sd15.bin"),),
    licence="Non-commercial research use (follows the InsightFace model licence).",
    source=f"{_HF}/h94/IP-Adapter-FaceID",
    required_for=("reconstruction with structure guidance (FaceID Plus)",),
))
_add(ModelSpec(
    id="clip.vit_h_14_image_encoder",
    title="CLIP ViT-H/14 image encoder (LAION-2B) for FaceID Plus",
    task="image-encoder",
    # The vision tower alone (2.5 GB) as IP-Adapter publishes it, not the full 3.9 GB CLIP model.
    # Published digest: https://huggingface.co/h94/IP-Adapter/blob/94e28fff1b6932cada2f95358d7191eca2106001/
    # models/image_encoder/model.safetensors shows "SHA256: 6ca9667d…b030"; the exact size 2528373448 is from
    # a Git LFS pointer with that same oid (huggingface.co/XuminYu/example_safetensors, commit 897ca16).
    # config.json has no published digest (not an LFS file): it stays on main and is pinned at first import.
    files=(ModelFile("model.safetensors", sha256="6ca9667da1ca9e0b0f75e46bb030f7e011f44f86cbfb8d5a36590fcd7507b030",
                     size=2528373448,
                     url=f"{_HF}/h94/IP-Adapter/resolve/94e28fff1b6932cada2f95358d7191eca2106001/models/"
                         "image_encoder/model.safetensors"),
           ModelFile("config.json", url=f"{_HF}/h94/IP-Adapter/resolve/main/models/image_encoder/config.json")),
    licence="MIT.",
    source="https://huggingface.co/laion/CLIP-ViT-H-14-laion2B-s32B-b79K (as packaged in h94/IP-Adapter)",
    required_for=("reconstruction with structure guidance (FaceID Plus)",),
    input_size=(224, 224),
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
))
_add(ModelSpec(
    id="controlnet.lineart_sd15",
    title="ControlNet v1.1 lineart (SD 1.5)",
    task="controlnet",
    files=_hf_files("lllyasviel/control_v11p_sd15_lineart", "diffusion_pytorch_model.safetensors", "config.json"),
    licence="CreativeML Open RAIL-M.",
    source=f"{_HF}/lllyasviel/control_v11p_sd15_lineart",
    required_for=("structure-following reconstruction",),
))
_add(ModelSpec(
    id="instruct_pix2pix",
    title="InstructPix2Pix instruction-based editor",
    task="editing",
    files=_hf_files(
        "timbrooks/instruct-pix2pix", "model_index.json", "unet/diffusion_pytorch_model.safetensors",
        "unet/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/config.json",
        "text_encoder/model.safetensors", "text_encoder/config.json", "tokenizer/vocab.json",
        "tokenizer/merges.txt", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
        "scheduler/scheduler_config.json",
        optional=("tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json"),
    ),
    licence="MIT (weights: CreativeML Open RAIL-M).",
    source=f"{_HF}/timbrooks/instruct-pix2pix",
    required_for=("disguise and appearance variations",),
    input_size=(512, 512),
))
_add(ModelSpec(
    id="sd15.safety_checker",
    title="Stable Diffusion safety checker (CompVis, as shipped with SD 1.5)",
    task="safety-checker",
    files=_hf_files("stable-diffusion-v1-5/stable-diffusion-v1-5", "safety_checker/model.safetensors",
                    "safety_checker/config.json", "feature_extractor/preprocessor_config.json"),
    licence="CreativeML Open RAIL-M.",
    source="https://huggingface.co/CompVis/stable-diffusion-safety-checker",
    required_for=("screening generated images (the reference setting; can be switched off)",),
    input_size=(224, 224),
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
    notes="Blacks out images it flags, as the reference pipeline does; the choice is recorded per image.",
))
_add(ModelSpec(
    id="open_clip.vit_b_32_laion2b",
    title="OpenCLIP ViT-B/32 (LAION-2B) for sketch attributes",
    task="attributes",
    # Published digest: https://huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K/blob/refs%2Fpr%2F1/
    # open_clip_pytorch_model.bin (from the publisher's initial commit 11e0f39) shows "SHA256: 1bd3c717…80ad";
    # the page gives "605 MB" only, so no size. No full commit hash was found: the URL stays on main.
    files=(ModelFile("open_clip_pytorch_model.bin",
                     sha256="1bd3c7172de5b207ceac554f5ab5266166f3b9baccc9af5989bc801016d080ad",
                     url=f"{_HF}/laion/CLIP-ViT-B-32-laion2B-s34B-b79K/resolve/main/open_clip_pytorch_model.bin"),
           ModelFile("open_clip_config.json",
                     url=f"{_HF}/laion/CLIP-ViT-B-32-laion2B-s34B-b79K/resolve/main/open_clip_config.json")),
    licence=("MIT. LAION's model card puts surveillance and face recognition out of scope: here it only "
             "describes a sketch (sex, age range, hair, facial hair, glasses) to pre-fill an editable prompt."),
    source=f"{_HF}/laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    required_for=("prompt suggestions from the sketch", "context-aware variations"),
    input_size=(224, 224),
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
))
# The pretrained tower the sketch-encoder trainer fine-tunes (trainer default model.pretrained).
# Digest: the Git LFS SHA-256 the Hugging Face file page publishes for open_clip_model.safetensors at
# revision 7288da5a0d6f0b51c4a2b27c624837a9236d0112 (page lists "599 MB"). The exact size 598516980 is from a
# third-party record that checks this file by the same SHA-256 and its byte count; the digest is what decides.
# The safetensors file, not the pickled .bin, so loading runs no code.
_B16_LAION = "laion/CLIP-ViT-B-16-laion2B-s34B-b88K"
_B16_LAION_REV = "7288da5a0d6f0b51c4a2b27c624837a9236d0112"
_add(ModelSpec(
    id="open_clip.vit_b_16_laion2b",
    title="OpenCLIP ViT-B/16 (LAION-2B, laion2b_s34b_b88k): pretrained tower for sketch-encoder training",
    task="sketch-backbone",
    files=(ModelFile("open_clip_model.safetensors",
                     sha256="3f25d29d3cc74e1d25d47e0593b4dd0864ced1e9b4d8e486a247ca4502f227f1", size=598516980,
                     url=f"{_HF}/{_B16_LAION}/resolve/{_B16_LAION_REV}/open_clip_model.safetensors"),),
    licence=("MIT. LAION's model card puts surveillance and face recognition out of scope for the CLIP model "
             "itself; here only its image tower is fine-tuned by your agency into a sketch encoder."),
    source=f"{_HF}/{_B16_LAION}/tree/{_B16_LAION_REV}",
    required_for=("training the sketch encoder (python -m trainer train)",),
    input_size=(224, 224),
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
    notes="GELU activation (open_clip's pretrained config for this tag has no quick_gelu); 599 MB.",
    extra={"open_clip_architecture": "ViT-B-16", "open_clip_tag": "laion2b_s34b_b88k"},
))
