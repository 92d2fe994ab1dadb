"""A1111's axis syntax, Prompt S/R, <lora:...> tags, the parameters text, and the grid layout."""

import pytest
from PIL import Image, ImageDraw

from facelora.evaluate import axes, infotext
from facelora.evaluate.gridimage import draw_grid, plan_layout, wrap
from facelora.fonts import font, font_for, has_cjk


def test_values_are_csv_with_quotes():
    assert axes.split_values(' a, "b, c" ,d ') == ["a", "b, c", "d"]
    assert axes.split_values("") == []


@pytest.mark.parametrize("text, kind, expected", [
    ("0.2-1.0 (+0.2)", "float", [0.2, 0.4, 0.6, 0.8, 1.0]),
    ("0-1 [6]", "float", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ("1-5", "int", [1, 2, 3, 4, 5]),
    ("1-10 (+3)", "int", [1, 4, 7, 10]),
    ("10-1 (-3)", "int", [10, 7, 4, 1]),
    ("0.4, 0.6,0.8", "float", [0.4, 0.6, 0.8]),
    ("0.1, 0.5-0.7 (+0.1)", "float", [0.1, 0.5, 0.6, 0.7]),
    ("-1", "int", [-1]),
    ("1234, 5678", "int", [1234, 5678]),
    ("20-30 [3]", "int", [20, 25, 30]),
])
def test_ranges_as_a1111_writes_them(text, kind, expected):
    assert axes.parse_numbers(text, kind) == pytest.approx(expected)
    assert all(isinstance(v, int) for v in axes.parse_numbers(text, kind)) == (kind == "int")


def test_range_floats_print_cleanly():
    assert [infotext.fmt_number(v) for v in axes.parse_numbers("0.2-1.0 (+0.2)")] == ["0.2", "0.4", "0.6", "0.8", "1"]


@pytest.mark.parametrize("text, words", [
    ("abc", "not a number or a range"),
    ("1-5 (-1)", "never gets"),
    ("0.5", "not a whole number"),
    ("", "no values"),
])
def test_bad_axis_values_say_what_to_write(text, words):
    with pytest.raises(axes.AxisError, match=words):
        axes.parse_numbers(text, "int" if text == "0.5" else "float")


def test_prompt_sr_needs_its_first_value_in_the_prompt():
    prompt = "photo of ohwx <lora:ohwx-000004:0.8>"
    assert axes.parse_sr("000004, 000006,000008", prompt) == ["000004", "000006", "000008"]
    assert axes.parse_sr("blurry, sharp", prompt, negative="blurry") == ["blurry", "sharp"]
    with pytest.raises(axes.AxisError, match="'000002' is not in the prompt"):
        axes.parse_sr("000002,000004", prompt)
    assert axes.replace(prompt, "x 000004", "000004", "000006") == ("photo of ohwx <lora:ohwx-000006:0.8>", "x 000006")


def test_lora_tags_read_strip_and_set():
    p = "ohwx, woman, <lora:ohwx-000002:0.8>, smiling"
    assert infotext.lora_tags(p) == [infotext.LoraTag("ohwx-000002", 0.8)]
    assert infotext.strip_lora_tags(p) == "ohwx, woman, smiling"
    assert infotext.set_lora_tag(p, infotext.LoraTag("ohwx", 1.0)) == "ohwx, woman, <lora:ohwx:1>, smiling"
    assert infotext.set_lora_tag("ohwx", infotext.LoraTag("a", 0.4)) == "ohwx <lora:a:0.4>"
    both = infotext.lora_tags("<lora:a:0.5:1> <lora:b>")
    assert (both[0].te, both[0].unet, both[1].weight) == (0.5, 1.0, 1.0)
    with pytest.raises(infotext.PromptError, match="not a number"):
        infotext.lora_tags("<lora:a:strong>")
    with pytest.raises(infotext.PromptError, match="one LoRA file at a time"):
        infotext.set_lora_tag("<lora:a:1> <lora:b:1>", infotext.LoraTag("c", 1))


def test_infotext_round_trip_and_a1111_text():
    text = infotext.Infotext(
        "ohwx, portrait <lora:ohwx-000002:0.8>", "blurry, lowres",
        {"Steps": 20, "Sampler": "DPM++ 2M Karras", "CFG scale": "7", "Seed": 1234, "Size": "512x512",
         "Model": "v1-5", "Lora hashes": "ohwx-000002: 0123456789ab"},
    ).text()
    assert text.splitlines()[1] == "Negative prompt: blurry, lowres"
    assert 'Lora hashes: "ohwx-000002: 0123456789ab"' in text
    back = infotext.parse_infotext(text)
    assert back.prompt == "ohwx, portrait <lora:ohwx-000002:0.8>" and back.negative == "blurry, lowres"
    assert back.params["Sampler"] == "DPM++ 2M Karras" and back.params["Seed"] == "1234"
    assert back.lora_hashes() == {"ohwx-000002": "0123456789ab"}
    # as A1111 itself writes it: a multi-line prompt, no negative prompt
    a1111 = ("masterpiece, ohwx woman,\n<lora:ohwx-000006:0.7>\nSteps: 30, Sampler: Euler a, Schedule type: Automatic, "
             "CFG scale: 7, Seed: 42, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
             "Script: X/Y/Z plot, Version: v1.10.1")
    parsed = infotext.parse_infotext(a1111)
    assert parsed.loras == [infotext.LoraTag("ohwx-000006", 0.7)] and parsed.negative == ""
    assert parsed.params["Size"] == "512x768" and parsed.params["Script"] == "X/Y/Z plot"


def test_png_keeps_the_parameters_text(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png", pnginfo=infotext.png_info("x <lora:n:0.5>\nSteps: 2, Seed: 1, Size: 8x8"))
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    assert infotext.read_png_infotext(tmp_path / "a.png").loras == [infotext.LoraTag("n", 0.5)]
    assert infotext.read_png_infotext(tmp_path / "b.png") is None


def test_layout_places_every_image_and_draws_labels():
    lay = plan_layout(64, 64, 2, ["ohwx-000001", "ohwx"], ["weight 0.5", "weight 1"], ["seed 1", "seed 2"], "title")
    assert lay.subgrids == 2 and lay.left > 0 and lay.top > 0 and lay.title_h > 0 and lay.z_title_h > 0
    assert lay.spacing > 0  # cells of several seeds stand apart
    assert lay.width == 2 * (lay.left + 2 * 2 * 64 + lay.spacing) + lay.gap
    assert lay.height == lay.title_h + lay.z_title_h + lay.top + 2 * 64
    colours = {(x, y, z, s): Image.new("RGB", (64, 64), (10 + 40 * x, 10 + 40 * y, 10 + 40 * z + 20 * s))
               for x in range(2) for y in range(2) for z in range(2) for s in range(2)}
    sheet = draw_grid(colours, lay, ["ohwx-000001", "ohwx"], ["weight 0.5", "weight 1"], ["seed 1", "seed 2"], "title")
    assert sheet.size == (lay.width, lay.height)
    for key, im in colours.items():
        x0, y0 = lay.origin(*key)
        assert sheet.getpixel((x0 + 32, y0 + 32)) == im.getpixel((0, 0))
    label_band = sheet.crop((0, lay.title_h + lay.z_title_h + lay.top, lay.left, lay.height)).convert("L")
    assert label_band.getextrema()[0] < 100  # the row labels are drawn


def test_long_labels_wrap_to_the_cell():
    f = font(12)
    lines = wrap("a-very-long-lora-file-name-000001", f, 60)
    assert len(lines) > 1 and all(f.getlength(line) <= 60 for line in lines)


def glyph(f, ch: str) -> bytes:
    im = Image.new("L", (40, 40), 0)
    ImageDraw.Draw(im).text((4, 4), ch, fill=255, font=f)
    return im.tobytes()


def test_chinese_labels_are_drawn_with_a_cjk_font():
    """DejaVu has no Han glyphs: it draws every one as the same empty box."""
    assert glyph(font(24), "照") == glyph(font(24), "片")
    assert has_cjk("照片 ohwx") and not has_cjk("ohwx-000001, <lora:ohwx:0.8>")
    cjk = font_for(24, "ohwx", "照片")
    assert cjk.path != font(24).path, (
        "No CJK font is installed, so Chinese labels would be empty boxes: apt-get install fonts-wqy-microhei "
        "(or fonts-noto-cjk)")
    assert glyph(cjk, "照") != glyph(cjk, "片")
    assert font_for(24, "ohwx-000001").path == font(24).path
