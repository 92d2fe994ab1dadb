"""The base model: its family's facts (family.py), the loaded model (sdmodel.py), loading
(base.py) and saving it (save.py), text conditioning (text.py), sampling images (sampling.py)
and the tiny test model (tiny.py). LoRA networks live in networks/, their file in lora_file.py."""
