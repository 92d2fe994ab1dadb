"""The one base class of the errors facelora explains to its user: the CLI and GUI print their
message (which says what to do) instead of a traceback."""

from __future__ import annotations

from typing import Any


class Templated(Exception):
    """An exception whose message is a template and its values: str(e) is the English filled in."""

    def __init__(self, message: str = "", *args: Any, **values: Any):
        self.template, self.values = message, values
        super().__init__(message.format(**values) if values else message, *args)

    @classmethod
    def of(cls, message: Any) -> Templated:
        """The exception of an events.Message (its template and values)."""
        return cls(message.template, **message.values)


class FaceloraError(Templated):
    """An input or situation the user can fix; the message says how.

    A message with values is written as a template and the values, `PathError("{path} is not a
    folder.", path=p)`: str(e) is the English text filled in, and `template` and `values` let the
    GUI fill its own language's template with the same values (gui/i18n.py, error_message)."""


class ConfigError(FaceloraError, ValueError):
    """A parameter or combination of parameters that cannot work."""
