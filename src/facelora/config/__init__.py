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
from .fields import OPTIONAL_PROJECT_FOLDERS, PROJECT_FOLDERS, TrainConfig, config_fields
from .kohya import export_kohya, face_differences, import_kohya
from .overrides import apply, parse_overrides
from .settings import ProjectSettings, load_settings, save_settings
from .values import parse_kv_args

__all__ = [
    "OPTIONAL_PROJECT_FOLDERS", "PRESETS", "PROJECT_FOLDERS", "ConfigError", "ProjectSettings", "TrainConfig", "apply", "check",
    "config_fields", "export_kohya", "face_differences", "import_kohya", "load_settings", "parse_kv_args", "parse_overrides",
    "preset", "save_settings",
]
