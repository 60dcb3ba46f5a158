"""Printable QR-code posters for a station's wall or a deputy's desk (Pillow).

A poster is an A5 or A4 page at 300 dpi: the station's or deputy's name, where it is, the QR code
WeChat made for it, and one line on how to use it, in a CJK font. The command line saves it; the
staff console can serve the same bytes."""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bot.core.people import Deputy, Station
from bot.texts import Texts

DPI = 300
PAPER_MM = {"A5": (148, 210), "A4": (210, 297)}
DEFAULT_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")  # Debian fonts-noto-cjk
_SIMPLIFIED_FAMILY = "CJK SC"  # a .ttc holds JP, KR, SC, TC, HK faces; the SC one draws 简体 forms
_RED = (200, 16, 46)
_INK = (17, 17, 17)
_GREY = (96, 96, 96)
_WHITE = (255, 255, 255)


class PosterError(Exception):
    """The poster cannot be drawn; the message is Chinese, for staff."""


@dataclass(frozen=True)
class PosterText:
    heading: str  # on the red band: what this is
    title: str  # the station's or deputy's name
    subtitle: str  # where, or which station
    how_to: Sequence[str]  # how to use the code, one short line each
    footer: str


def paper_pixels(paper: str) -> tuple[int, int]:
    width_mm, height_mm = PAPER_MM[paper]
    return round(width_mm / 25.4 * DPI), round(height_mm / 25.4 * DPI)


def station_text(station: Station, texts: Texts) -> PosterText:
    return PosterText(
        heading=texts.get("poster_heading"),
        title=station.name,
        subtitle=station.address or station.town,
        how_to=texts.raw("poster_how_to"),
        footer=texts.get("poster_footer", code=station.code),
    )


def deputy_text(deputy: Deputy, station: Station | None, texts: Texts) -> PosterText:
    return PosterText(
        heading=texts.get("poster_heading"),
        title=texts.get("poster_deputy_title", level=deputy.level, name=deputy.name),
        subtitle=station.name if station else deputy.station_code,
        how_to=texts.raw("poster_how_to"),
        footer=texts.get("poster_footer", code=deputy.code),
    )


def render(qr_image: bytes, text: PosterText, texts: Texts, *, paper: str = "A5",
           font_path: Path = DEFAULT_FONT) -> bytes:
    """The poster as PNG bytes (with its dpi recorded, so it prints at paper size). Blocking."""
    width, height = paper_pixels(paper)
    unit = width / 100  # every measure below is in hundredths of the page width
    regular = _font_file(font_path, texts)
    bold = _bold_sibling(regular)
    page = Image.new("RGB", (width, height), _WHITE)
    draw = ImageDraw.Draw(page)
    margin = round(7 * unit)
    text_width = width - 2 * margin

    band = round(15 * unit)
    draw.rectangle((0, 0, width, band), fill=_RED)
    _centred(draw, [text.heading], _font(bold, round(6.5 * unit)), width, band / 2, _WHITE, text_width,
             anchor_middle=True)

    y = band + round(7 * unit)
    y = _centred(draw, [text.title], _font(bold, round(7.5 * unit)), width, y, _INK, text_width)
    y = _centred(draw, [text.subtitle], _font(regular, round(4 * unit)), width, y + round(1.5 * unit), _GREY,
                 text_width)

    qr = _qr_image(qr_image, texts)
    side = round(64 * unit)
    qr = qr.resize((side, side), Image.Resampling.NEAREST)  # nearest: modules stay sharp-edged
    qr_top = y + round(5 * unit)
    page.paste(qr, ((width - qr.width) // 2, qr_top))

    y = qr_top + qr.height + round(5 * unit)
    y = _centred(draw, text.how_to[:1], _font(bold, round(6 * unit)), width, y, _INK, text_width)
    _centred(draw, text.how_to[1:], _font(regular, round(3.8 * unit)), width, y + round(1.5 * unit), _INK,
             text_width)
    footer_font = _font(regular, round(2.8 * unit))
    _centred(draw, [text.footer], footer_font, width, height - margin, _GREY, text_width)

    out = io.BytesIO()
    page.save(out, format="PNG", dpi=(DPI, DPI))
    return out.getvalue()


def _centred(draw: ImageDraw.ImageDraw, lines: Sequence[str], font: ImageFont.FreeTypeFont, width: int, y: float,
             fill: tuple[int, int, int], max_width: int, *, anchor_middle: bool = False) -> int:
    """Draw each line centred (wrapped to max_width); returns the y below the last one."""
    line_height = round(font.size * 1.35)
    for line in lines:
        for part in _wrap(line, font, max_width):
            draw.text((width / 2, y), part, font=font, fill=fill, anchor="mm" if anchor_middle else "ma")
            y += line_height
    return round(y)


def _wrap(line: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Chinese has no spaces to break at: break between characters, as Chinese typesetting does."""
    parts, current = [], ""
    for char in line:
        if current and font.getlength(current + char) > max_width:
            parts.append(current)
            current = char
        else:
            current += char
    return parts + [current] if current else parts


def _qr_image(data: bytes, texts: Texts) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # Pillow raises several types for a body that is not an image
        raise PosterError(texts.get("poster_bad_qrcode")) from exc
    return image.convert("RGB")


def _font_file(path: Path, texts: Texts) -> Path:
    try:
        _font(path, 12)
    except OSError as exc:  # missing, or not a font
        raise PosterError(texts.get("poster_font_missing", path=path)) from exc
    return path


def _bold_sibling(regular: Path) -> Path:
    bold = regular.with_name(regular.name.replace("Regular", "Bold"))
    return bold if bold.is_file() else regular


@lru_cache(maxsize=32)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size, index=_simplified_index(path))


@lru_cache(maxsize=8)
def _simplified_index(path: Path) -> int:
    """The face of a font collection that draws Simplified Chinese (0 for a single-face file)."""
    index = 0
    while True:
        try:
            face = ImageFont.truetype(str(path), 12, index=index)
        except OSError:
            return 0
        if _SIMPLIFIED_FAMILY in face.getname()[0]:
            return index
        index += 1
