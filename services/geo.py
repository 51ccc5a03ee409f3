"""Where things are: points, the distance between them, and the cells that index positions.

A courier's position is kept with its H3 cell at the finest resolution (`FINE`), as an
integer. An H3 integer holds its resolution and, from the coarsest down, the digit of each
finer cell inside the one before; a finer cell's unused digits are 7. So the finest cells
inside any coarser cell are exactly the integers from that cell with its unused digits all 0
to the same with them all 7: one range of an index (`descendants`). Searching near a point
reads a few such ranges, ring by ring, and never the positions far away.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass

import h3.api.basic_int as h3

from db.models import Point

FINE = 15  # the resolution positions are kept at
# The resolutions searched near a point, finest first: each reads the cells within RINGS of
# the point's own, about 7 times the area of the one before per step of one.
SEARCHED = (10, 8, 6, 4, 2, 0)
RINGS = 2
_RESOLUTION_SHIFT = 52
_RESOLUTION_MASK = 0xF << _RESOLUTION_SHIFT
_DIGIT_BITS = 3


@dataclass(frozen=True, slots=True)
class Area:
    """The cells around a point at one resolution, as ranges of the finest cells, and how far
    from the point everything surely lies inside them."""

    resolution: int
    ranges: tuple[tuple[int, int], ...]
    reach_m: float


def cell_of(lat: float, lon: float) -> int:
    """The finest H3 cell holding the point, as an integer."""
    return int(h3.latlng_to_cell(lat, lon, FINE))


def distance_m(a: Point, b: Point) -> float:
    """The great-circle distance in metres; right across the antimeridian and at the poles."""
    return float(h3.great_circle_distance((a.lat, a.lon), (b.lat, b.lon), unit="m"))


def descendants(cell: int) -> tuple[int, int]:
    """The range of finest cells inside `cell`, both ends included."""
    unused = _DIGIT_BITS * (FINE - h3.get_resolution(cell))
    lowest = (cell & ~_RESOLUTION_MASK | FINE << _RESOLUTION_SHIFT) & ~((1 << unused) - 1)
    return lowest, lowest | ((1 << unused) - 1)


def areas(point: Point) -> Iterator[Area]:
    """The areas to search for what is nearest the point, smallest first."""
    for resolution in SEARCHED:
        own = h3.latlng_to_cell(point.lat, point.lon, resolution)
        cells = h3.grid_disk(own, RINGS)
        yield Area(resolution, _merged(sorted(map(descendants, cells))), _reach_m(own))


def _reach_m(cell: int) -> float:
    """How far from any point of `cell` the cells within RINGS of it surely reach.

    The first ring holds every point within two edges of the cell's centre, so within one edge
    of any point of the cell; a finest cell lies inside its coarser ancestor only roughly (up
    to about a ring out), which the second ring covers. Only half an edge is claimed: a margin
    for cells that are not regular hexagons (pentagons, the projection's distortion)."""
    edge = math.sqrt(2 * h3.cell_area(cell, unit="m^2") / (3 * math.sqrt(3)))
    return 0.5 * edge


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted ranges with those that touch joined: fewer for the database to read."""
    merged: list[tuple[int, int]] = []
    for low, high in ranges:
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def valid(lat: float, lon: float) -> bool:
    """Whether these are a latitude and a longitude: finite, and within their ranges."""
    return math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180
