"""Every training parameter, under Kohya's names, with the defaults for a face.

- fields.py: TrainConfig, the parameters with their defaults, help and Basic/Advanced group (the
  GUI's form and the CLI's help are read from them);
- values.py: Kohya's value syntax (resolution, `key=value` argument lists);
- checks.py: combinations that cannot work, the CPU fallbacks, the tutorial's presets;
- overrides.py: `--name value` parameters on the command line, and applying updates;
- settings.py: a project's facelora.toml;
- kohya.py: Kohya's training TOML, exported and imported.
"""

from ..errors import ConfigError
from .checks import PRESETS, check, preset
from .fields import PROJECT_FOLDERS, Precision, SavePrecision, TrainConfig, config_fields
from .kohya import export_kohya, import_kohya
from .overrides import ALIASES, LIST_FIELDS, apply, explain, parse_overrides
from .settings import ProjectSettings, load_settings, save_settings
from .values import parse_kv_args, parse_resolution

__all__ = [
    "ALIASES", "LIST_FIELDS", "PRESETS", "PROJECT_FOLDERS", "ConfigError", "Precision", "ProjectSettings", "SavePrecision",
    "TrainConfig", "apply", "check", "config_fields", "explain", "export_kohya", "import_kohya",
    "load_settings", "parse_kv_args", "parse_overrides", "parse_resolution", "preset", "save_settings",
]
