"""The GUI's languages: English (the strings in the code) and Simplified Chinese (zh-CN), as
kohya_ss and A1111 offer. Every label, help line and fixed message is written in English in the
code and looked up here by that English text; Kohya's parameter names stay as they are beside
the translated words, as in kohya_ss. The language is the GUI's (saved in facelora-gui.toml), as
kohya_ss's localization is; switching it relabels the open page.

Messages with values in them are written `T("Kept {n} photo(s).", n=3)`: the template is the key.
tests/test_gui_i18n.py walks every component the GUI builds and every T()/note() literal in gui/
and fails on any English string without a translation here.
"""

from __future__ import annotations

from typing import Any

from ..errors import said_by
from ..messages import Message
from .zh_cn import ZH_CN

LANGUAGES = {"en": "English", "zh-CN": "简体中文"}
CATALOGUES: dict[str, dict[str, str]] = {"zh-CN": ZH_CN}
_current = ["en"]
SEPARATOR = "  "  # between the plain words and the Kohya name in a label

# Plain words for each Kohya name, as kohya_ss labels them ("Network Rank (Dimension)").
PLAIN: dict[str, str] = {
    "sdpa": "SDPA attention",
    "full_fp16": "Full fp16 training (experimental)",
    "full_bf16": "Full bf16 training (experimental)",
    "caption_dropout_rate": "Caption dropout rate",
    "caption_dropout_every_n_epochs": "Drop captions every n epochs",
    "caption_tag_dropout_rate": "Tag dropout rate",
    "multires_noise_iterations": "Multires noise iterations",
    "multires_noise_discount": "Multires noise discount",
    "ip_noise_gamma": "Input perturbation noise",
    "debiased_estimation_loss": "Debiased estimation loss",
    "scale_weight_norms": "Max-norm regularisation",
    "ema_decay": "EMA decay",
    "pretrained_model_name_or_path": "Base model", "train_data_dir": "Image folder",
    "output_dir": "Output folder", "output_name": "Model output name", "logging_dir": "Logging folder",
    "caption_extension": "Caption file extension", "network_module": "Network type",
    "network_dim": "Network Rank (Dimension)", "network_alpha": "Network Alpha", "network_dropout": "Network dropout",
    "network_args": "Network arguments", "network_weights": "Start from LoRA file",
    "network_train_unet_only": "Train UNet only", "network_train_text_encoder_only": "Train text encoder only",
    "train_batch_size": "Train batch size", "max_train_steps": "Max train steps",
    "max_train_epochs": "Epochs", "gradient_accumulation_steps": "Gradient accumulate steps",
    "seed": "Seed", "learning_rate": "Learning rate", "unet_lr": "UNet learning rate",
    "text_encoder_lr": "Text Encoder learning rate", "optimizer_type": "Optimizer",
    "optimizer_args": "Optimizer extra arguments", "lr_scheduler": "LR Scheduler",
    "lr_scheduler_num_cycles": "LR number of cycles", "lr_scheduler_power": "LR power",
    "lr_warmup_steps": "LR warmup steps", "max_grad_norm": "Max grad norm",
    "resolution": "Max resolution", "enable_bucket": "Enable buckets", "min_bucket_reso": "Minimum bucket resolution",
    "max_bucket_reso": "Maximum bucket resolution", "bucket_reso_steps": "Bucket resolution steps",
    "bucket_no_upscale": "Don't upscale small images",
    "cache_latents": "Cache latents", "cache_latents_to_disk": "Cache latents to disk",
    "shuffle_caption": "Shuffle caption", "keep_tokens": "Keep n tokens", "max_token_length": "Max token length",
    "max_data_loader_n_workers": "Max num workers for DataLoader", "mixed_precision": "Mixed precision",
    "save_precision": "Save precision", "gradient_checkpointing": "Gradient checkpointing",
    "xformers": "Use xformers", "torch_compile": "Compile the UNet", "clip_skip": "Clip skip",
    "noise_offset": "Noise offset", "min_snr_gamma": "Min SNR gamma",
    "save_every_n_epochs": "Save every N epochs", "save_every_n_steps": "Save every N steps",
    "save_last_n_epochs": "Keep last N epochs", "save_state": "Save training state",
    "sample_every_n_epochs": "Sample every N epochs", "sample_prompts": "Sample prompts file",
    "sample_sampler": "Sample sampler", "max_nonfinite_steps": "Max NaN steps in a row",
    # the face objective (masked loss, validation, class images)
    "masked_loss": "Masked loss", "alpha_mask": "Alpha mask", "reg_data_dir": "Regularisation folder",
    "prior_loss_weight": "Prior loss weight", "validation_split": "Validation split", "validation_seed": "Validation seed",
    "validate_every_n_epochs": "Validate every N epochs", "validate_every_n_steps": "Validate every N steps",
    "max_validation_steps": "Max validation steps", "unmasked_weight": "Unmasked weight", "head_mask": "Head mask",
    "conditioning_data_dir": "Mask folder", "validation_data_dir": "Validation folder", "mask_dir": "Mask folder",
    # prepare's options
    "framing": "Framing", "level": "Level the eyes", "upscaler": "Upscaler", "captioner": "Captioner", "tags": "Extra tags", "face_ratio": "Face ratio",
    "face_offset": "Face offset", "allow_multiple": "Allow several faces", "second_face_ratio": "Second face ratio",
    "min_crop_px": "Minimum crop size", "general_threshold": "General tag threshold",
    "character_threshold": "Character tag threshold", "keep_identity_tags": "Keep identity tags",
    "overwrite_captions": "Overwrite captions", "blur_threshold": "Blur threshold",
    "drift_threshold": "Identity drift threshold", "duplicate_bits": "Duplicate hash bits",
    "outlier_threshold": "Outlier threshold",
    # the grid's options
    "checkpoints": "LoRA files", "weights": "LoRA weights", "prompt": "Prompt", "negative": "Negative prompt",
    "seeds": "Seeds", "z": "Third axis", "z_values": "Third axis values", "xsr": "X as Prompt S/R",
    "ysr": "Y as Prompt S/R", "sampler": "Sampler", "steps": "Sampling steps", "cfg": "CFG scale",
    "size": "Image size", "base_model": "Base model", "allow_pickle": "Allow .ckpt", "device": "Device",
}


# The GUI can show a message from any module but the CLI's own (cli/, whose messages only a
# terminal shows): each raise elsewhere is written as a template with its values, each with a zh-CN
# template (zh_cn_errors*.py); tests/test_gui_i18n.py holds them to it. An error from a library shows
# its kind's words below, then its English.
CLI_ONLY = ("cli/", "__main__.py")
# Where the training run's messages come from (messages.said calls, written into events.jsonl's End,
# Error and Skipped events for the Train page), each with a zh-CN template (zh_cn_train.py).
RUN_SOURCES = ("train/", "prepare/")
# Where a run's start notes come from (the notes events.jsonl's Start holds, which the Train page
# shows): each written with said(), each with a zh-CN template (zh_cn_train.py).
NOTE_SOURCES = ("train/", "dataset.py", "config/checks.py")

# Each FaceloraError class's kind in plain words: in zh-CN, a message with no template of its own
# shows these words' translation, then the English message.
ERROR_KINDS: dict[str, str] = {
    "FaceloraError": "Cannot do that", "ConfigError": "Invalid parameter", "OptionsError": "Invalid options",
    "PathError": "Path refused", "ProjectError": "Project problem", "DatasetError": "Training folder problem",
    "TrainDataError": "Training image problem", "TooFewPhotos": "Too few photos", "JobError": "Job problem",
    "ReadError": "Cannot read a file", "WriteError": "Cannot write a file", "DiskFullError": "Disk full",
    "BaseModelError": "Base model problem", "LoRAFileError": "LoRA file problem", "LoraFileError": "LoRA file problem",
    "UnknownNetworkError": "Unknown network type", "UnknownSamplerError": "Unknown sampler",
    "GridError": "Grid settings problem", "AxisError": "Grid axis problem", "PromptError": "Prompt problem",
    "PromptsError": "Sample prompts problem", "ProbeError": "Probe problem", "LikenessError": "Likeness scoring problem",
    "ClassImagesError": "Class images problem", "TrainingDiverged": "Training diverged", "ResumeError": "Cannot resume",
    "CaptionerError": "Captioner problem", "UpscalerUnavailable": "Upscaler unavailable", "PrepareError": "Prepare problem",
    "ImageRejected": "Photo refused",
}


COLON = {"zh-CN": "："}  # between an error's kind and its English message


def error_message(e: BaseException, lang: str | None = None) -> str:
    """An error's message in the GUI's language: its template translated and filled with its
    values (said_in); a message with no translation keeps its English after its kind's words
    ("路径被拒绝：..."); in English, the message as it is."""
    lang = lang or _current[0]
    own = getattr(e, "said", None)  # with its nested messages, which said_by flattens for JSON
    message = own if isinstance(own, Message) and str(e) == own.text else said_by(e)
    if lang == "en" or message.template in CATALOGUES[lang]:
        return said_in(message, lang)
    kind = next((ERROR_KINDS[c.__name__] for c in type(e).__mro__ if c.__name__ in ERROR_KINDS), None)
    return f"{tr(kind, lang)}{COLON[lang]}{e}" if kind else str(e)


def said_in(message: Message, lang: str | None = None) -> str:
    """A message (an error's, or events.jsonl's template and values) in the GUI's language; one
    with no translation, or from an old file without its template, in its English."""
    lang = lang or _current[0]
    nested = any(isinstance(v, Message) for v in message.values.values())
    if lang == "en" or message.template not in CATALOGUES[lang] and not nested:
        return message.text
    return _filled(message.template, message.values, lang)


def _filled(template: str, values: dict[str, Any], lang: str) -> str:
    """The template translated, filled with the values; a value that is itself a word of the GUI
    (a path's `what`) or a message translated too."""
    if not values:
        return tr(template, lang)
    return T(template, lang, **{k: tr(v, lang) if isinstance(v, str) else said_in(v, lang) if isinstance(v, Message)
                                else v for k, v in values.items()})


def language() -> str:
    return _current[0]


def set_language(code: str) -> str:
    if code not in LANGUAGES:
        raise ValueError(f"Unknown language {code!r}; choose one of {', '.join(LANGUAGES)}.")
    _current[0] = code
    return code


def tr(text: str, lang: str | None = None) -> str:
    """`text` in the GUI's language (itself when English, or when it is not a fixed string). A
    label "Plain words  kohya_name" is translated in its plain part only."""
    lang = lang or _current[0]
    if lang == "en" or not text:
        return text
    table = CATALOGUES[lang]
    if text in table:
        return table[text]
    plain, sep, name = text.rpartition(SEPARATOR)
    if sep and plain in table and name in PLAIN:
        return f"{table[plain]}{SEPARATOR}{name}"
    return text


def T(template: str, lang: str | None = None, **values: Any) -> str:  # noqa: N802 - reads as a marker
    """A message with values: the template translated, then filled in."""
    return tr(template, lang).format(**values)


def label_of(name: str) -> str:
    """A parameter's label: plain words, then its Kohya name ("Network Rank (Dimension)  network_dim")."""
    plain = PLAIN.get(name)
    return f"{plain}{SEPARATOR}{name}" if plain else name


def missing(texts: list[str], lang: str = "zh-CN") -> list[str]:
    """The English strings among `texts` that have no translation (for the test)."""
    table = CATALOGUES[lang]

    def known(t: str) -> bool:
        plain, sep, name = t.rpartition(SEPARATOR)
        return t in table or bool(sep and plain in table and name in PLAIN)

    return sorted({t for t in texts if t and t.strip() and not known(t)})
