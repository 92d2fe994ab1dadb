"""The language switch: every component's English words (label, help line, placeholder, button
text, static Markdown) recorded once when the page is built, and re-sent in the chosen language
when it changes or a page loads."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .i18n import LANGUAGES, language, set_language, tr

# Markdown whose text is not fixed (it shows the open project): filled by its own handler.
DYNAMIC_MARKDOWN = {"current-project"}
_WORDS = ("label", "info", "placeholder")


def english_words(blocks: gr.Blocks) -> list[tuple[Any, dict[str, str]]]:
    """(component, {property: English text}) for everything the person reads on the page."""
    out = []
    for block in blocks.blocks.values():
        words: dict[str, str] = {}
        if isinstance(block, (gr.Tab, gr.Accordion)) and isinstance(block.label, str):
            words["label"] = block.label
        elif isinstance(block, gr.Markdown):
            if block.elem_id not in DYNAMIC_MARKDOWN and isinstance(block.value, str) and block.value:
                words["value"] = block.value
        elif isinstance(block, gr.DownloadButton):  # its words are its label (its value is the file)
            if isinstance(block.label, str) and block.label:
                words["label"] = block.label
        elif isinstance(block, gr.Button):
            if isinstance(block.value, str):
                words["value"] = block.value
        elif isinstance(block, gr.components.Component) and not isinstance(block, (gr.HTML, gr.State)):
            for prop in _WORDS:
                text = getattr(block, prop, None)
                if isinstance(text, str) and text:
                    words[prop] = text
        if words:
            out.append((block, words))
    return out


def updates(recorded: list[tuple[Any, dict[str, str]]], lang: str) -> list[Any]:
    return [gr.update(**{prop: tr(text, lang) for prop, text in words.items()}) for _, words in recorded]


def radio() -> gr.Radio:
    """The switch, placed at the top of the page ("English / 简体中文")."""
    return gr.Radio([(name, code) for code, name in LANGUAGES.items()], value=language(), label="Language / 语言",
                    show_label=False,
                    container=False, elem_id="language")


def wire(blocks: gr.Blocks, switch_: gr.Radio, on_change: Any = None) -> Any:
    """Relabel every component when the language changes (`on_change(code)` saves the choice) and
    when a page loads in a language other than English. Call it last inside `blocks`; returns the
    switch's event, to redraw the pages' messages after it."""
    recorded = [(c, w) for c, w in english_words(blocks) if c is not switch_]
    targets = [c for c, _ in recorded]

    def change(code: str) -> list[Any]:
        set_language(code)
        if on_change is not None:
            on_change(code)
        return updates(recorded, code)

    def load() -> list[Any]:
        lang = language()
        return [gr.update(value=lang)] + (updates(recorded, lang) if lang != "en" else [gr.skip()] * len(targets))

    blocks.load(load, None, [switch_, *targets], show_progress="hidden")
    return switch_.input(change, [switch_], targets, show_progress="hidden")
