"""A message as its English template and the values it is filled with: the one carrier of every
message facelora writes for its user (an error's, an event's, a run's start notes), so the
terminal prints the English and the GUI fills its own language's template with the same values
(gui/i18n.py). The bottom layer: it imports nothing of facelora."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """"Interrupted at step {step}.", step=40: `text` is the English filled in (a template with no
    values is the text as it is, braces included)."""

    template: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        if not self.values:
            return self.template
        return self.template.format(**{k: v.text if isinstance(v, Message) else v for k, v in self.values.items()})

    def keys(self) -> dict[str, Any]:
        """The event keys that carry it (events.jsonl's message, template and values)."""
        return {"message": self.text, "template": self.template, "values": self.values}

    def plain(self) -> Message:
        """The same message with its values as JSON holds them (a path as its text)."""
        return Message(self.template, {k: v if isinstance(v, (int, float, bool)) else
                                       v.text if isinstance(v, Message) else str(v) for k, v in self.values.items()})


def joined(messages: list[Message], separator: str = "; ") -> Message:
    """Several messages as one (a value may itself be a Message): each is filled, and translated,
    on its own; the joined template holds only their places."""
    return Message(separator.join(f"{{m{i}}}" for i in range(len(messages))),
                   {f"m{i}": m for i, m in enumerate(messages)})


def said(template: str, **values: Any) -> Message:
    """A message with values; the one way a message the GUI shows is written (tests/test_gui_i18n.py
    reads these calls for their templates)."""
    return Message(template, values)


def said_as(texts: list[str], messages: list[Message]) -> list[Message]:
    """Each English text as its message (template and values), where one was kept beside it with
    that same text; a text with none (a report written before the templates) as itself."""
    known = {m.text: m for m in messages}
    return [known.get(t, Message(template=t)) for t in texts]
