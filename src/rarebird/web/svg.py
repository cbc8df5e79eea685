"""Geometry of the server-rendered pictures: the swimlanes and a user's timeline.

Only numbers, colours and already-built links are computed here; the templates write the SVG,
so every label (a user or host name) is escaped like any other text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rarebird.explain import SEVERITY_COLOURS, severity
from rarebird.store.views import DAY_MS, DayCount, Lane
from rarebird.timeutil import from_epoch_ms

_MINUTE = 60_000
#: cell widths a swimlane may use, finest first
CELL_CHOICES_MS = tuple(
    m * _MINUTE for m in (15, 30, 60, 180, 360, 720, 1440, 2880, 10_080, 43_200)
)
LABEL_WIDTH = 150
PLOT_WIDTH = 840
ROW_HEIGHT = 22


def pick_cell(range_ms: int, bucket_ms: int, max_cells: int = 96) -> int:
    """The finest cell width (at least one bucket) that fits the range in ``max_cells``.

    >>> pick_cell(7 * 86_400_000, 900_000) // 60_000
    180
    """
    for cell in CELL_CHOICES_MS:
        if cell >= bucket_ms and range_ms / cell <= max_cells:
            return cell
    return max(CELL_CHOICES_MS[-1], bucket_ms)


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    title: str
    href: str = ""


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    href: str = ""


@dataclass(frozen=True, slots=True)
class Picture:
    width: int
    height: int
    rects: tuple[Rect, ...]
    labels: tuple[Label, ...]
    ticks: tuple[Label, ...]


def swimlane(
    lanes: Sequence[Lane],
    start_ms: int,
    cell_ms: int,
    cells: int,
    link: Callable[[Lane, int], str],
    lane_link: Callable[[Lane], str] | None = None,
) -> Picture:
    """Rows of cells coloured by their max score (Elastic's severity colours)."""
    cw = PLOT_WIDTH / max(1, cells)
    rects: list[Rect] = []
    labels: list[Label] = []
    for row, lane in enumerate(lanes):
        y = row * ROW_HEIGHT
        labels.append(Label(4, y + 15, lane.label[:24], lane_link(lane) if lane_link else ""))
        rects.append(Rect(LABEL_WIDTH, y + 1, PLOT_WIDTH, ROW_HEIGHT - 2, "#f5f7fa", ""))
        for i, score in lane.cells:
            if not 0 <= i < cells:
                continue
            when = from_epoch_ms(start_ms + i * cell_ms)
            rects.append(
                Rect(
                    LABEL_WIDTH + i * cw, y + 1, max(cw - 1, 1), ROW_HEIGHT - 2,
                    SEVERITY_COLOURS[severity(score)],
                    f"{lane.label}: max score {score:.1f} ({severity(score)}) at {when:%Y-%m-%d %H:%M}",
                    link(lane, i),
                )
            )  # fmt: skip
    height = max(1, len(lanes)) * ROW_HEIGHT + 18
    return Picture(
        LABEL_WIDTH + PLOT_WIDTH, height, tuple(rects), tuple(labels),
        _time_ticks(start_ms, cell_ms * cells, height - 4),
    )  # fmt: skip


def _time_ticks(start_ms: int, range_ms: int, y: float, count: int = 6) -> tuple[Label, ...]:
    out = []
    for k in range(count):
        t = start_ms + range_ms * k // count
        fmt = "%m-%d %H:%M" if range_ms <= 3 * DAY_MS else "%Y-%m-%d"
        out.append(Label(LABEL_WIDTH + PLOT_WIDTH * k / count, y, f"{from_epoch_ms(t):{fmt}}"))
    return tuple(out)


def timeline(days: Sequence[DayCount], user: str, anomaly_days: set[int]) -> Picture:
    """Two rows of daily bars: the user's discovery commands and the fleet's, each on its own
    scale; days with an anomaly of the user are marked."""
    n = max(1, len(days))
    cw = PLOT_WIDTH / n
    panel = 60
    rects: list[Rect] = []
    mine_max = max((d.user_events for d in days), default=0) or 1
    fleet_max = max((d.fleet_events for d in days), default=0) or 1
    for i, d in enumerate(days):
        x = LABEL_WIDTH + i * cw
        day = f"{d.day:%Y-%m-%d}"
        if d.user_events:
            h = max(2.0, panel * d.user_events / mine_max)
            fill = "#fe5050" if i in anomaly_days else "#006bb4"
            rects.append(Rect(x, panel - h, max(cw - 1, 1), h, fill,
                              f"{day}: {user} ran {d.user_events:,} discovery commands"))  # fmt: skip
        elif i in anomaly_days:
            rects.append(Rect(x, panel - 2, max(cw - 1, 1), 2, "#fe5050", f"{day}: anomaly"))
        if d.fleet_events:
            h = max(1.0, panel * d.fleet_events / fleet_max)
            rects.append(Rect(x, 2 * panel + 10 - h, max(cw - 1, 1), h, "#98a2b3",
                              f"{day}: the fleet ran {d.fleet_events:,} discovery commands"))  # fmt: skip
    labels = (
        Label(4, panel / 2 + 4, f"{user[:18]} (max {mine_max:,}/day)"),
        Label(4, panel * 1.5 + 14, f"fleet (max {fleet_max:,}/day)"),
    )
    start = int(days[0].day.timestamp() * 1000) if days else 0
    height = 2 * panel + 30
    return Picture(LABEL_WIDTH + PLOT_WIDTH, height, tuple(rects), labels,
                   _time_ticks(start, n * DAY_MS, height - 4))  # fmt: skip
