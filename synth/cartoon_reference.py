"""The ``cartoon`` reference generator: a flat-shaded bust drawn with PIL, on the CPU, in milliseconds.

It replaces Flux on machines without a GPU and in tests. The look follows the speaker's
attributes: skin tone from the race, hair length from the sex, grey hair and forehead lines from the
age, and the outfit's cut (collar, crew neck, lapels) from the outfit. The seed picks colours within
those ranges. The face sits at fixed fractions of the image, given by ``FaceLayout``, and the
``cartoon`` animator reads the eye and mouth positions from that layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
from PIL import Image, ImageDraw

from camabc_core.interfaces import ReferenceGenerator

# Drawing at 4× the size and downsampling gives anti-aliased edges without a vector library.
SUPERSAMPLING = 4

RGB = tuple[int, int, int]

SKIN_TONES: dict[str, tuple[RGB, RGB]] = {
    # race -> (lightest, darkest) skin colour; the seed picks a point between them.
    "White": ((246, 214, 190), (222, 176, 146)),
    "Middle Eastern": ((214, 170, 132), (186, 140, 102)),
    "Black": ((140, 96, 66), (84, 56, 38)),
    "Mediterranean": ((226, 186, 150), (198, 154, 116)),
}
HAIR_COLOURS: dict[str, tuple[RGB, ...]] = {
    "White": ((60, 40, 28), (110, 74, 44), (196, 160, 96), (146, 72, 36), (30, 24, 22)),
    "Middle Eastern": ((28, 22, 20), (52, 36, 28)),
    "Black": ((20, 16, 16), (38, 28, 24)),
    "Mediterranean": ((34, 26, 22), (68, 46, 32), (96, 64, 40)),
}
OUTFIT_COLOURS: tuple[RGB, ...] = (
    (52, 84, 140), (150, 42, 48), (46, 110, 76), (88, 88, 96), (210, 206, 196),
    (36, 44, 62), (180, 120, 60), (110, 70, 130),
)
BACKGROUNDS: tuple[RGB, ...] = ((214, 214, 210), (200, 208, 216), (222, 214, 200), (206, 212, 204))
GREY_HAIR: RGB = (196, 196, 192)


@attrs.frozen
class FaceLayout:
    """Positions of the face features, as fractions of the image width (x) and height (y).

    Sizes are fractions of ``min(width, height)`` so the face stays round in non-square images.
    """

    head_center: tuple[float, float] = (0.5, 0.40)
    head_radii: tuple[float, float] = (0.20, 0.25)
    eye_offset_x: float = 0.085  # distance of each eye from the centre line
    eye_y: float = 0.37
    eye_radii: tuple[float, float] = (0.035, 0.022)
    mouth_center: tuple[float, float] = (0.5, 0.525)
    mouth_half_width: float = 0.065
    mouth_max_open: float = 0.055  # height of the fully open mouth


DEFAULT_LAYOUT = FaceLayout()


def _mix(first: RGB, second: RGB, weight: float) -> RGB:
    """Blend two colours: ``weight`` 0 gives ``first``, 1 gives ``second``."""
    return tuple(round(a + (b - a) * weight) for a, b in zip(first, second))  # type: ignore[return-value]


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(int(max(0, min(255, round(channel * factor)))) for channel in colour)  # type: ignore[return-value]


@attrs.frozen
class BustStyle:
    """Colours and shapes of one cartoon bust, fixed by the attributes and the seed."""

    skin: RGB
    hair: RGB
    outfit: RGB
    background: RGB
    long_hair: bool
    bald_top: bool
    forehead_lines: bool
    outfit_cut: str  # "collar", "crew" or "lapels"

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], seed: int) -> BustStyle:
        rng = np.random.default_rng(seed)
        race = attributes.get("race", "White")
        light, dark = SKIN_TONES.get(race, SKIN_TONES["White"])
        skin = _mix(light, dark, float(rng.uniform()))
        palette = HAIR_COLOURS.get(race, HAIR_COLOURS["White"])
        hair = palette[int(rng.integers(len(palette)))]
        age = int(attributes.get("age", 40))
        # Hair greys from about 40 and is mostly grey by 75.
        hair = _mix(hair, GREY_HAIR, float(np.clip((age - 40) / 35, 0.0, 1.0)) * float(rng.uniform(0.6, 1.0)))
        sex = attributes.get("sex", "female")
        outfit = str(attributes.get("outfit", "wearing clothes"))
        cut = "collar" if "shirts" in outfit and "t-shirts" not in outfit else (
            "crew" if "t-shirts" in outfit else "lapels")
        return cls(
            skin=skin,
            hair=hair,
            outfit=OUTFIT_COLOURS[int(rng.integers(len(OUTFIT_COLOURS)))],
            background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
            long_hair=sex == "female" and bool(rng.uniform() < 0.8),
            bald_top=sex == "male" and age >= 50 and bool(rng.uniform() < 0.4),
            forehead_lines=age >= 60,
            outfit_cut=cut,
        )


class _Canvas:
    """Converts layout fractions to pixels of the supersampled drawing."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width * SUPERSAMPLING, height * SUPERSAMPLING
        self.unit = min(self.width, self.height)
        self.image = Image.new("RGB", (self.width, self.height))
        self.draw = ImageDraw.Draw(self.image)

    def point(self, x: float, y: float) -> tuple[float, float]:
        return x * self.width, y * self.height

    def ellipse(self, center: tuple[float, float], radii: tuple[float, float], colour: RGB) -> None:
        cx, cy = self.point(*center)
        rx, ry = radii[0] * self.unit, radii[1] * self.unit
        self.draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)

    def polygon(self, points: list[tuple[float, float]], colour: RGB) -> None:
        self.draw.polygon([self.point(x, y) for x, y in points], fill=colour)

    def line(self, points: list[tuple[float, float]], colour: RGB, width: float) -> None:
        self.draw.line([self.point(x, y) for x, y in points], fill=colour,
                       width=max(1, round(width * self.unit)), joint="curve")


def _draw_background(canvas: _Canvas, style: BustStyle) -> None:
    top, bottom = np.array(_shade(style.background, 1.05)), np.array(_shade(style.background, 0.9))
    ramp = np.linspace(0.0, 1.0, canvas.height)[:, None]
    rows = (top + (bottom - top) * ramp).clip(0, 255).astype(np.uint8)  # (H, 3)
    gradient = np.broadcast_to(rows[:, None, :], (canvas.height, canvas.width, 3))
    canvas.image.paste(Image.fromarray(np.ascontiguousarray(gradient)))


def _draw_torso(canvas: _Canvas, style: BustStyle, layout: FaceLayout) -> None:
    cx = layout.head_center[0]
    neck_top = layout.head_center[1] + layout.head_radii[1] * 0.6 * canvas.unit / canvas.height
    neck_half = 0.07 * canvas.unit / canvas.width
    # Shoulders: a wide ellipse rising from below the frame.
    canvas.ellipse((cx, 1.08), (0.46, 0.34), style.outfit)
    canvas.polygon([(cx - neck_half, neck_top), (cx + neck_half, neck_top),
                    (cx + neck_half, 0.80), (cx - neck_half, 0.80)], _shade(style.skin, 0.88))
    if style.outfit_cut == "crew":
        canvas.ellipse((cx, 0.765), (0.085, 0.05), _shade(style.skin, 0.88))
        canvas.line([(cx - 0.075, 0.77), (cx, 0.80), (cx + 0.075, 0.77)], _shade(style.outfit, 0.75), 0.012)
    elif style.outfit_cut == "collar":
        collar = _mix(style.outfit, (245, 245, 245), 0.6)
        canvas.polygon([(cx - 0.1, 0.75), (cx, 0.82), (cx - 0.02, 0.86)], collar)
        canvas.polygon([(cx + 0.1, 0.75), (cx, 0.82), (cx + 0.02, 0.86)], collar)
        canvas.line([(cx, 0.83), (cx, 1.0)], _shade(style.outfit, 0.7), 0.006)
    else:
        canvas.polygon([(cx - 0.07, 0.75), (cx, 0.92), (cx + 0.07, 0.75)], _shade(style.skin, 0.88))
        lapel = _shade(style.outfit, 0.72)
        canvas.polygon([(cx - 0.09, 0.76), (cx - 0.005, 0.93), (cx - 0.14, 0.86)], lapel)
        canvas.polygon([(cx + 0.09, 0.76), (cx + 0.005, 0.93), (cx + 0.14, 0.86)], lapel)


def _draw_back_hair(canvas: _Canvas, style: BustStyle, layout: FaceLayout) -> None:
    # Drawn before the torso and the head, so long hair shows beside the face and over the shoulders.
    if style.long_hair:
        cx, cy = layout.head_center
        rx, ry = layout.head_radii
        canvas.ellipse((cx, cy + 0.1 * canvas.unit / canvas.height), (rx * 1.25, ry * 1.3), style.hair)


def _draw_head(canvas: _Canvas, style: BustStyle, layout: FaceLayout) -> None:
    cx, cy = layout.head_center
    rx, ry = layout.head_radii
    unit_y = canvas.unit / canvas.height
    unit_x = canvas.unit / canvas.width
    canvas.ellipse((cx - rx * unit_x, cy + 0.02 * unit_y), (0.035, 0.05), _shade(style.skin, 0.92))
    canvas.ellipse((cx + rx * unit_x, cy + 0.02 * unit_y), (0.035, 0.05), _shade(style.skin, 0.92))
    canvas.ellipse((cx, cy), (rx, ry), style.skin)
    if not style.bald_top:
        # The hair cap: an ellipse over the top of the head, cut by the forehead line.
        canvas.ellipse((cx, cy - ry * 0.62 * unit_y), (rx * 1.04, ry * 0.5), style.hair)
    if style.forehead_lines:
        for offset in (0.0, 0.025):
            y = cy - ry * 0.3 * unit_y + offset * unit_y
            canvas.line([(cx - 0.06 * unit_x, y), (cx + 0.06 * unit_x, y)], _shade(style.skin, 0.8), 0.004)


def _draw_features(canvas: _Canvas, style: BustStyle, layout: FaceLayout) -> None:
    unit_x = canvas.unit / canvas.width
    unit_y = canvas.unit / canvas.height
    for side in (-1, 1):
        eye_x = layout.head_center[0] + side * layout.eye_offset_x * unit_x
        canvas.ellipse((eye_x, layout.eye_y), layout.eye_radii, (250, 250, 246))
        canvas.ellipse((eye_x, layout.eye_y), (layout.eye_radii[1] * 0.9,) * 2, (70, 52, 40))
        canvas.ellipse((eye_x, layout.eye_y), (layout.eye_radii[1] * 0.4,) * 2, (16, 12, 10))
        brow_y = layout.eye_y - 0.05 * unit_y
        canvas.line([(eye_x - 0.04 * unit_x, brow_y + 0.006 * unit_y), (eye_x + 0.04 * unit_x, brow_y)],
                    _shade(style.hair, 0.9), 0.012)
    nose_top = layout.eye_y + 0.02 * unit_y
    canvas.line([(layout.head_center[0], nose_top), (layout.head_center[0] - 0.015 * unit_x, 0.47),
                 (layout.head_center[0] + 0.01 * unit_x, 0.475)], _shade(style.skin, 0.78), 0.008)
    mouth_x, mouth_y = layout.mouth_center
    half = layout.mouth_half_width * unit_x
    canvas.line([(mouth_x - half, mouth_y), (mouth_x, mouth_y + 0.006 * unit_y), (mouth_x + half, mouth_y)],
                lip_colour(style.skin), 0.012)


def lip_colour(skin: RGB) -> RGB:
    """Return the lip colour that goes with a skin tone."""
    return _mix(_shade(skin, 0.75), (150, 60, 60), 0.45)


def draw_bust(width: int, height: int, attributes: Mapping[str, Any], seed: int,
              layout: FaceLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """Draw a bust for ``attributes`` (sex, age, race, outfit) as RGB uint8 (height, width, 3)."""
    style = BustStyle.from_attributes(attributes, seed)
    canvas = _Canvas(width, height)
    _draw_background(canvas, style)
    _draw_back_hair(canvas, style, layout)
    _draw_torso(canvas, style, layout)
    _draw_head(canvas, style, layout)
    _draw_features(canvas, style, layout)
    image = canvas.image.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy()


class CartoonReferenceGenerator(ReferenceGenerator):
    """Draws the reference portrait with PIL; the prompt is ignored, the attributes decide the look."""

    def __init__(self, layout: FaceLayout = DEFAULT_LAYOUT):
        self.layout = layout

    def generate(self, prompt: str, *, seed: int, width: int, height: int,
                 attributes: Mapping[str, Any]) -> np.ndarray:
        return draw_bust(width, height, attributes, seed, self.layout)
