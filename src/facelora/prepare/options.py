"""Every choice `prepare` makes, with its default: the one place the CLI, the GUI and the
pipeline take them from. Light to import (pydantic only), so `facelora --help` stays quick."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The audit's thresholds (measured on the package photos; see quality.py for the measures).
BLUR_WARNING = 40.0  # Laplacian variance of the face at 128 px: the astronaut ~150, blurred by 1 px ~19
DRIFT_WARNING = 0.2  # descriptor distance an upscaler may move a face (Lanczos ~0.07, Real-ESRGAN ~0.14)
DUPLICATE_BITS = 4  # pHash distance (of 64 bits) at or below which two crops are near-duplicates
# Each face's distance to the centroid of the others. Genuine photos run up to about 0.56 on real
# sets of many people (0.45 flagged ~5% of them); on the package photos here the same person lies
# 0.10-0.18 from the rest (15 astronaut variants, 6 of Grace Hopper) and the other person, added as
# the intruder, 0.67-0.68 (no pair of the two closer than 0.66). 0.6, dlib's own same-person
# threshold, lies between: above every genuine figure, below every intruder.
OUTLIER_DISTANCE = 0.6
UNMASKED_WEIGHT = 0.25  # head mask (masks.py): the background's loss weight, so it still trains a little
MIN_CROP_PX = 128  # a crop smaller than this (source pixels) is stretched more than 4x to 512


class PrepareOptions(BaseModel):
    """Every choice `prepare` makes; the CLI's options and the GUI's form are these fields."""

    model_config = ConfigDict(extra="forbid")

    resolution: Literal[512, 768] = Field(512, description="side of the square training images: 512, or 768 where the photos allow")
    upscaler: str = Field("lanczos", description="lanczos, realesrgan, or a model file (.param+.bin, .pth, .safetensors)")
    captioner: str = Field("template", description="template, or a WD14 tagger folder (model.onnx + selected_tags.csv)")
    tags: list[str] = Field(default_factory=list, description="tags added to every caption after the class word")
    framing: Literal["head", "face", "bust"] = Field("head", description="head: the whole head and a little shoulder; face: tight; bust: head and shoulders")
    face_ratio: float | None = Field(None, gt=1.0, le=8.0, description="crop side in brow-to-chin lengths, instead of the framing's (head 2.8, face 1.9, bust 4.0)")
    level: bool = Field(False, description="turn each photo so the eyes are level before cutting (when the turned square stays inside the photo)")
    allow_multiple: bool = Field(False, description="keep photos with other large faces (the largest is the person)")
    second_face_ratio: float = Field(0.5, gt=0.0, le=1.0, description="a second face taller than this share of the subject's means several people")
    min_crop_px: int = Field(MIN_CROP_PX, ge=16, description="crops smaller than this (source px) are flagged")
    general_threshold: float = Field(0.35, ge=0.0, le=1.0, description="tagger: score a general tag needs")
    character_threshold: float = Field(0.85, ge=0.0, le=1.0, description="tagger: score a character tag needs")
    keep_identity_tags: bool = Field(False, description="keep hair/eye colour, freckles, beard... in captions (by default the trigger word absorbs them)")
    overwrite_captions: bool = Field(False, description="rewrite captions that already exist")
    blur_threshold: float = Field(BLUR_WARNING, ge=0.0, description="warn when the face's Laplacian variance is below this (blurred)")
    drift_threshold: float = Field(DRIFT_WARNING, ge=0.0, description="warn when upscaling moved the face's identity vector further than this")
    duplicate_bits: int = Field(DUPLICATE_BITS, ge=0, le=64, description="photos whose perceptual hashes differ in at most this many bits are near-duplicates")
    head_mask: bool = Field(False, description="write a head mask as each PNG's alpha channel, for training with masked_loss + alpha_mask")
    mask_dir: str | None = Field(None, description="head mask: write it as a grey PNG of the photo's name under this project folder (Kohya's conditioning_data_dir), not as the alpha channel")
    unmasked_weight: float = Field(UNMASKED_WEIGHT, ge=0.0, le=1.0, description="head mask: the loss weight of the background")
    outlier_threshold: float = Field(OUTLIER_DISTANCE, gt=0.0, description="flag a photo whose face is further than this from the others (maybe somebody else)")
