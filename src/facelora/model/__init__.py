"""Stable Diffusion 1.5 models: loading and saving the base model (base.py), the tiny test model
(tiny.py) and the Kohya LoRA network and file format (lora.py)."""
