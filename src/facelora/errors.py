"""The one base class of the errors facelora explains to its user: the CLI and GUI print their
message (which says what to do) instead of a traceback."""

from __future__ import annotations

from typing import Any

from .messages import Message


class Templated(Exception):
    """An exception that holds its message as a template and its values (`said`, a Message):
    str(e) is the English filled in. Raised as `Error("{path} is not a folder.", path=p)`, or
    with a Message built elsewhere, `Error(said(...))`."""

    def __init__(self, message: str | Message = "", *args: Any, **values: Any):
        self.said = message if isinstance(message, Message) else Message(message, values)
        super().__init__(self.said.text, *args)


class FaceloraError(Templated):
    """An input or situation the user can fix; the message says how.

    A message with values is written as a template and the values, `PathError("{path} is not a
    folder.", path=p)`: str(e) is the English text filled in, and `said` lets the GUI fill its
    own language's template with the same values (gui/i18n.py, error_message)."""


class ConfigError(FaceloraError, ValueError):
    """A parameter or combination of parameters that cannot work."""


def said_by(e: BaseException) -> Message:
    """What an error says, as a Message with its values as JSON holds them (for an event or a
    report): a Templated error's own, else its text (an error whose text was changed after it
    was raised, too)."""
    message = getattr(e, "said", None)
    if isinstance(message, Message) and str(e) == message.text:
        return message.plain()
    return Message(str(e) or type(e).__name__)
