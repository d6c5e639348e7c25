"""Viam's ``color_detector``: boxes around connected regions of one color (numpy only).

A pixel matches when its hue is within ``hue_tolerance_pct`` (a fraction of the
hue circle, split evenly either side) of ``detect_color``'s hue and its
saturation and value reach ``saturation_cutoff_pct`` (default 0.2) and
``value_cutoff_pct`` (default 0.3). Matching pixels are grouped into
4-connected segments; each segment of at least ``segment_size_px`` pixels
(default 5000) becomes a detection with confidence 1, largest first, labelled
``label`` or the color's name (rdk's hue names).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import Detection

DEFAULT_SEGMENT_SIZE_PX = 5000
DEFAULT_SATURATION_CUTOFF = 0.2
DEFAULT_VALUE_CUTOFF = 0.3
_HUE_NAMES = (
    (15, "red"), (45, "orange"), (75, "yellow"), (105, "lime-green"), (135, "green"),
    (165, "green-blue"), (195, "cyan"), (225, "light-blue"), (255, "blue"),
    (285, "violet"), (315, "magenta"), (345, "rose"), (360, "red"),
)  # fmt: skip


class ColorDetectorError(ValueError):
    """A bad attribute: ``key`` names it, ``problem`` says what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key = key
        self.problem = problem


def parse_hex_color(text: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` -> (r, g, b); ValueError otherwise."""
    value = text.strip()
    if len(value) != 7 or value[0] != "#":
        raise ValueError(f'must be a color such as "#FF0000", got {text!r}')
    try:
        return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
    except ValueError:
        raise ValueError(f'must be a color such as "#FF0000", got {text!r}') from None


def hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in degrees [0, 360), saturation and value in [0, 1] of an (..., 3) uint8 array."""
    f = rgb.astype(np.float32) / 255.0
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    v = f.max(axis=-1)
    c = v - f.min(axis=-1)
    s = np.where(v > 0, c / np.where(v > 0, v, 1), 0.0)
    safe_c = np.where(c > 0, c, 1)
    h = np.where(
        v == r, ((g - b) / safe_c) % 6, np.where(v == g, (b - r) / safe_c + 2, (r - g) / safe_c + 4)
    )
    h = np.where(c > 0, h * 60.0, 0.0) % 360.0
    return h, s, v


def hue_name(hue_deg: float) -> str:
    """rdk's name for a hue: ``red``, ``orange``, ... ``rose``."""
    hue = int(hue_deg) % 360
    return next(name for upper, name in _HUE_NAMES if hue < upper)


@dataclass(frozen=True)
class ColorDetector:
    """A configured color detector; call :meth:`detect` on an (H, W, 3) uint8 RGB frame."""

    hue_deg: float
    hue_tolerance: float
    segment_size_px: int = DEFAULT_SEGMENT_SIZE_PX
    saturation_cutoff: float = DEFAULT_SATURATION_CUTOFF
    value_cutoff: float = DEFAULT_VALUE_CUTOFF
    label: str = ""

    @classmethod
    def from_attributes(
        cls,
        detect_color: str,
        hue_tolerance_pct: float,
        segment_size_px: int = 0,
        saturation_cutoff_pct: float = 0.0,
        value_cutoff_pct: float = 0.0,
        label: str = "",
    ) -> ColorDetector:
        """Checked like rdk checks them; ValueError names the attribute."""
        try:
            color = np.array([[parse_hex_color(detect_color)]], dtype=np.uint8)
        except ValueError as exc:
            raise ColorDetectorError("detect_color", str(exc)) from None
        h, s, v = (float(x[0, 0]) for x in hsv(color))
        sat = saturation_cutoff_pct or DEFAULT_SATURATION_CUTOFF
        val = value_cutoff_pct or DEFAULT_VALUE_CUTOFF
        if not 0.0 < hue_tolerance_pct <= 1.0:
            raise ColorDetectorError(
                "hue_tolerance_pct", f"must be more than 0 and at most 1, got {hue_tolerance_pct}"
            )
        for key, cutoff in (("saturation_cutoff_pct", sat), ("value_cutoff_pct", val)):
            if not 0.0 <= cutoff <= 1.0:
                raise ColorDetectorError(key, f"must be between 0 and 1, got {cutoff}")
        if s == 0 or s < sat:
            raise ColorDetectorError(
                "detect_color", f"{detect_color!r} is too close to grayscale to detect"
            )
        if v < val:
            raise ColorDetectorError("detect_color", f"{detect_color!r} is too dark to detect")
        if segment_size_px < 0:
            raise ColorDetectorError("segment_size_px", f"must be >= 0, got {segment_size_px}")
        return cls(
            hue_deg=h,
            hue_tolerance=hue_tolerance_pct,
            segment_size_px=segment_size_px or DEFAULT_SEGMENT_SIZE_PX,
            saturation_cutoff=sat,
            value_cutoff=val,
            label=label or hue_name(h),
        )

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """The (H, W) bool mask of pixels of the color."""
        h, s, v = hsv(rgb)
        ok = (s >= self.saturation_cutoff) & (v >= self.value_cutoff)
        if self.hue_tolerance >= 1.0:
            return ok
        half_deg = self.hue_tolerance / 2.0 * 360.0
        distance = np.abs((h - self.hue_deg + 180.0) % 360.0 - 180.0)
        return ok & (distance <= half_deg)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detections of the color in ``rgb``, largest segment first."""
        found = [
            (area, box) for area, box in segments(self.mask(rgb)) if area >= self.segment_size_px
        ]
        found.sort(key=lambda item: -item[0])
        return [Detection(*box, confidence=1.0, class_name=self.label) for _area, box in found]


def segments(mask: np.ndarray) -> list[tuple[int, tuple[int, int, int, int]]]:
    """4-connected segments of ``mask``: (pixel count, (x_min, y_min, x_max, y_max)), max exclusive.

    Runs of set pixels are found per row with numpy; runs that overlap in
    neighbouring rows are joined with a union-find over runs (few, compared with pixels).
    """
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows_s, starts = np.nonzero(edges == 1)
    rows_e, ends = np.nonzero(edges == -1)  # exclusive ends; same order as the starts
    n = len(starts)
    if n == 0:
        return []
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_first = np.searchsorted(rows_s, np.arange(height + 1))
    for row in range(1, height):
        a0, a1 = row_first[row - 1], row_first[row]
        b1 = row_first[row + 1]
        i, j = a0, a1
        while i < a1 and j < b1:  # both rows' runs are sorted by start
            if starts[i] < ends[j] and starts[j] < ends[i]:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[ri] = rj
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1
    stats: dict[int, list[int]] = {}
    for k in range(n):
        root = find(k)
        x0, x1, y = int(starts[k]), int(ends[k]), int(rows_s[k])
        s = stats.get(root)
        if s is None:
            stats[root] = [x1 - x0, x0, y, x1, y + 1]
        else:
            s[0] += x1 - x0
            s[1] = min(s[1], x0)
            s[2] = min(s[2], y)
            s[3] = max(s[3], x1)
            s[4] = max(s[4], y + 1)
    del rows_e
    return [(s[0], (s[1], s[2], s[3], s[4])) for s in stats.values()]
