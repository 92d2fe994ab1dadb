"""The one base class of the errors facelora explains to its user: the CLI and GUI print their
message (which says what to do) instead of a traceback."""


class FaceloraError(Exception):
    """An input or situation the user can fix; the message says how."""


class ConfigError(FaceloraError, ValueError):
    """A parameter or combination of parameters that cannot work."""
