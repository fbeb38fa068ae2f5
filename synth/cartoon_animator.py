"""The ``cartoon`` animator: opens the mouth with the speech energy and blinks, on the CPU.

Mouth shapes for a few openings and the closed eyes are drawn once per clip as small patches, so a
frame is a copy of the reference with one or two patches pasted in. The features sit where the
``cartoon`` reference generator draws them (``FaceLayout``). On other portraits (Flux) the mouth is
drawn at the same place, which suits previews and tests but not training data.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageDraw

from camabc_core.interfaces import AnimationRequest, Animator
from synth.cartoon_reference import DEFAULT_LAYOUT, SUPERSAMPLING, FaceLayout, lip_colour
from synth.levels import frame_energies_db

MOUTH_INSIDE = (70, 24, 30)
TEETH = (236, 232, 224)


def mouth_openings(energies_db: np.ndarray, floor_db: float, ceiling_db: float) -> np.ndarray:
    """Map frame levels to mouth openings in [0, 1], smoothed over neighbouring frames.

    Levels are absolute (dBFS), not normalised per clip, so a window clip and the whole side it
    comes from open the mouth equally at the same moment.
    """
    openings = np.clip((energies_db - floor_db) / (ceiling_db - floor_db), 0.0, 1.0)
    if openings.shape[0] < 3:
        return openings
    padded = np.pad(openings, 1, mode="edge")
    return 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]


def _box(center: tuple[float, float], half_size: tuple[float, float],
         shape: tuple[int, int]) -> tuple[slice, slice]:
    """Return (rows, columns) slices of a pixel box around ``center``, clipped to the image."""
    height, width = shape
    top = max(0, int(np.floor(center[1] - half_size[1])))
    bottom = min(height, int(np.ceil(center[1] + half_size[1])))
    left = max(0, int(np.floor(center[0] - half_size[0])))
    right = min(width, int(np.ceil(center[0] + half_size[0])))
    return slice(top, bottom), slice(left, right)


Shape = tuple[str, tuple[float, ...], tuple[int, int, int]]


def _draw_on_patch(patch: np.ndarray, shapes: list[Shape]) -> np.ndarray:
    """Draw ellipses/lines given in patch pixel coordinates, supersampled, and return the new patch."""
    height, width = patch.shape[:2]
    image = Image.fromarray(patch).resize((width * SUPERSAMPLING, height * SUPERSAMPLING),
                                          Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    for kind, coordinates, colour in shapes:
        scaled = [value * SUPERSAMPLING for value in coordinates]
        if kind == "ellipse":
            draw.ellipse(scaled, fill=colour)
        else:
            draw.line(scaled, fill=colour, width=max(1, SUPERSAMPLING * 2))
    return np.asarray(image.resize((width, height), Image.Resampling.BOX), dtype=np.uint8).copy()


class CartoonAnimator(Animator):
    """Animates a portrait by pasting pre-drawn mouth and eyelid patches, frame by frame.

    :param levels: number of mouth openings drawn (closed included).
    :param floor_db: RMS level (dBFS) at or below which the mouth is closed.
    :param ceiling_db: RMS level (dBFS) at or above which the mouth is fully open.
    :param blink_period: seconds between blinks; blinks are placed on the conversation's timeline.
    :param blink_duration: seconds the eyes stay closed.
    """

    def __init__(self, *, levels: int = 8, floor_db: float = -48.0, ceiling_db: float = -16.0,
                 blink_period: float = 3.7, blink_duration: float = 0.12,
                 layout: FaceLayout = DEFAULT_LAYOUT):
        if levels < 2:
            raise ValueError(f"levels must be at least 2, got {levels}")
        if ceiling_db <= floor_db:
            raise ValueError(f"ceiling_db ({ceiling_db}) must be above floor_db ({floor_db})")
        self.levels = levels
        self.floor_db = floor_db
        self.ceiling_db = ceiling_db
        self.blink_period = blink_period
        self.blink_duration = blink_duration
        self.layout = layout

    def _mouth_patches(self, reference: np.ndarray) -> tuple[tuple[slice, slice], list[np.ndarray]]:
        height, width = reference.shape[:2]
        unit = min(width, height)
        layout = self.layout
        center = (layout.mouth_center[0] * width, layout.mouth_center[1] * height)
        half_width = layout.mouth_half_width * unit
        max_open = layout.mouth_max_open * unit
        box = _box((center[0], center[1] + max_open / 2), (half_width * 1.25, max_open / 2 + 0.02 * unit),
                   (height, width))
        crop = reference[box]
        # Skin just above the upper lip, to paint over the closed-mouth line.
        skin = tuple(int(v) for v in np.median(crop[:2].reshape(-1, 3), axis=0))
        lips = lip_colour(skin)  # type: ignore[arg-type]
        local_x, local_y = center[0] - box[1].start, center[1] - box[0].start
        patches = [crop.copy()]
        for level in range(1, self.levels):
            opening = level / (self.levels - 1)
            open_height = 0.15 * max_open + 0.85 * max_open * opening
            mouth_half = half_width * (1.0 - 0.2 * opening)
            shapes = [
                ("ellipse", (local_x - half_width * 1.1, local_y - 0.015 * unit,
                             local_x + half_width * 1.1, local_y + 0.015 * unit), skin),
                ("ellipse", (local_x - mouth_half, local_y - 0.012 * unit,
                             local_x + mouth_half, local_y + open_height), lips),
                ("ellipse", (local_x - mouth_half * 0.8, local_y - 0.004 * unit,
                             local_x + mouth_half * 0.8, local_y + open_height * 0.82), MOUTH_INSIDE),
            ]
            if opening > 0.4:
                shapes.append(("ellipse", (local_x - mouth_half * 0.6, local_y - 0.002 * unit,
                                           local_x + mouth_half * 0.6, local_y + open_height * 0.22), TEETH))
            patches.append(_draw_on_patch(crop.copy(), shapes))
        return box, patches

    def _closed_eye_patches(self, reference: np.ndarray) -> list[tuple[tuple[slice, slice], np.ndarray]]:
        height, width = reference.shape[:2]
        unit = min(width, height)
        layout = self.layout
        patches = []
        for side in (-1, 1):
            center = (layout.head_center[0] * width + side * layout.eye_offset_x * unit,
                      layout.eye_y * height)
            radii = (layout.eye_radii[0] * unit * 1.3, layout.eye_radii[1] * unit * 1.6)
            box = _box(center, radii, (height, width))
            crop = reference[box]
            skin = tuple(int(v) for v in np.median(crop[-2:].reshape(-1, 3), axis=0))
            local = (center[0] - box[1].start, center[1] - box[0].start)
            lid = tuple(int(v * 0.6) for v in skin)
            shapes = [
                ("ellipse", (local[0] - radii[0], local[1] - radii[1],
                             local[0] + radii[0], local[1] + radii[1]), skin),
                ("line", (local[0] - radii[0] * 0.8, local[1], local[0] + radii[0] * 0.8, local[1]), lid),
            ]
            patches.append((box, _draw_on_patch(crop.copy(), shapes)))
        return patches

    def _blinking(self, times: np.ndarray, seed: int) -> np.ndarray:
        phase = (seed % 1000) / 1000.0 * self.blink_period
        return np.mod(times + phase, self.blink_period) < self.blink_duration

    def animate(self, request: AnimationRequest) -> Iterator[np.ndarray]:
        reference = np.ascontiguousarray(request.reference, dtype=np.uint8)
        mouth_box, mouth_patches = self._mouth_patches(reference)
        eye_patches = self._closed_eye_patches(reference)
        energies = frame_energies_db(request.audio, request.sample_rate, request.fps, request.num_frames)
        openings = mouth_openings(energies, self.floor_db, self.ceiling_db)
        levels = np.round(openings * (self.levels - 1)).astype(np.int64)  # (N,)
        times = request.start_time + np.arange(request.num_frames) / request.fps
        blinking = self._blinking(times, request.seed)
        for index in range(request.num_frames):
            frame = reference.copy()
            frame[mouth_box] = mouth_patches[levels[index]]
            if blinking[index]:
                for box, patch in eye_patches:
                    frame[box] = patch
            yield frame
