"""The board pack: one self-contained HTML report per month_end, charts drawn here as inline SVG.

Why SVG written by hand rather than a charting library: the report must open
anywhere (an e-mail attachment, an air-gapped laptop, a PDF printer) with
nothing loaded from the network and no JavaScript to trust, and a board pack
needs only a handful of chart shapes (lines, bars, a heat map), each a few
dozen lines of geometry.

What it reads (read-only DuckDB connection; every table is optional except
marts.kpi_portfolio_monthly, and a missing one becomes a clearly labelled
"not yet computed" panel instead of an error):

    marts.kpi_portfolio_monthly      headline tiles, OPB/disbursement trend, PAR ladder
    marts.board_monthly_pack         month-on-month growth, net credit loss, promise-to-pay
    marts.kpi_roll_rates             roll-rate heat map of the month
    marts.kpi_vintage_curves         cumulative default curves of the latest 12 vintages
    marts.risk_top_obligors          top-10 obligors
    marts.risk_par_ladder_by_segment PAR by segment
    metrics.metric_cashflow_projection, metrics.metric_covenants, metrics.metric_borrowing_base,
    metrics.metric_expected_credit_loss

Labels and formulas of the figures come from the metric store, so the pack
says what each number means in the words the catalog uses.

Pure: no Dagster. ``write_board_pack`` writes ``<reports_dir>/<month_end>/board_pack.html``
atomically (temp file + rename) and, when Debian's chromium is installed, a
PDF printed from it next to it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import html
import json
import logging
import math
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import duckdb

from abaco_assets.lib.storage import read_json_record
from abaco_assets.lib.metric_store import MetricStore, MetricStoreError, load_metric_store

log = logging.getLogger(__name__)

TREND_MONTHS = 24
"""Month-ends shown in the trend charts (the latest ones up to the pack's month_end)."""
VINTAGES_SHOWN = 12
TOP_OBLIGORS = 10
ACTIVE_BUCKETS = ("current", "1-29", "30-59", "60-89", "90-179", "180+")
ALL_BUCKETS = (*ACTIVE_BUCKETS, "written_off", "paid_off")
PAR_LADDER = ("par1", "par7", "par15", "par30", "par60", "par90", "npl180_ratio")
PDF_TIMEOUT_SECONDS = 90

PALETTE = ("#1f5fa8", "#e07b39", "#2e9e6a", "#c23b4a", "#7a5ab8", "#8c6d46", "#d45fa6", "#5f6b7a",
           "#b5a22c", "#2aa7b8")
INK, MUTED, GRID, PAPER = "#1d2733", "#5f6b7a", "#e3e7ec", "#ffffff"

# What a chart section must contain: the browser test counts the SVGs per section.
CHART_SECTIONS = ("opb-trend", "par-ladder", "vintage-curves", "roll-rates", "cashflow", "concentration")


# ---------------------------------------------------------------------------------------------
# Number formatting
# ---------------------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def format_usd(value: Any, *, compact: bool = False) -> str:
    """$1,234,568 (whole dollars: a board reads magnitudes), or $1.23M / $45.6K when compact."""
    number = _number(value)
    if number is None:
        return "n/a"
    sign = "-" if number < 0 else ""
    number = abs(number)
    if compact:
        for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if number >= threshold:
                scaled = number / threshold
                return f"{sign}${scaled:,.{2 if scaled < 10 else 1}f}{suffix}"
        return f"{sign}${number:,.0f}"
    return f"{sign}${number:,.0f}"


def format_percent(value: Any, digits: int = 2) -> str:
    """Ratios are fractions in the marts (0.0123); the pack shows 1.23%."""
    number = _number(value)
    return "n/a" if number is None else f"{number * 100:,.{digits}f}%"


def format_count(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:,.0f}"


def format_value(value: Any, unit: str) -> str:
    if unit == "usd":
        return format_usd(value)
    if unit == "ratio":
        return format_percent(value)
    if unit == "boolean":
        return "n/a" if value is None else ("yes" if value else "no")
    return format_count(value)


def month_label(day: dt.date) -> str:
    return day.strftime("%b %y")


def _escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


# ---------------------------------------------------------------------------------------------
# SVG charts
# ---------------------------------------------------------------------------------------------

def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round axis ticks (1, 2, 2.5, 5 x 10^k steps) covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw_step = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    start = math.floor(low / step) * step
    ticks = [round(start, 12)]
    while ticks[-1] < high - step * 1e-9 or len(ticks) < 2:
        ticks.append(round(start + step * len(ticks), 12))
    return ticks


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class _Frame:
    """Plot area geometry and the value -> pixel mapping of one chart."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom

    def x_center(self, index: int, count: int) -> float:
        return self.left + self.plot_width * (index + 0.5) / max(count, 1)

    def y(self, value: float, ticks: Sequence[float]) -> float:
        low, high = ticks[0], ticks[-1]
        return self.top + self.plot_height * (1 - (value - low) / ((high - low) or 1))


def _svg_open(frame: _Frame, label: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" '
            f'width="100%" role="img" aria-label="{_escape(label)}" class="chart">',
            f"<title>{_escape(label)}</title>"]


def _y_axis(frame: _Frame, ticks: Sequence[float], fmt: Callable[[float], str], side: str = "left") -> list[str]:
    parts = []
    for tick in ticks:
        y = frame.y(tick, ticks)
        if side == "left":
            parts.append(f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{GRID}" stroke-width="1"/>')
            parts.append(f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                         f"{_escape(fmt(tick))}</text>")
        else:
            parts.append(f'<text x="{frame.width - frame.right + 6}" y="{y + 4:.1f}" text-anchor="start" '
                         f'class="tick">{_escape(fmt(tick))}</text>')
    return parts


def _x_axis(frame: _Frame, labels: Sequence[str]) -> list[str]:
    longest = max((len(label) for label in labels), default=1)
    max_labels = max(2, int(frame.plot_width // (7 * longest + 14)))  # about 7 px per character at 11 px
    every = max(1, math.ceil(len(labels) / max_labels))
    baseline = frame.height - frame.bottom
    parts = [f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{baseline}" y2="{baseline}" '
             f'stroke="{MUTED}" stroke-width="1"/>']
    for index, label in enumerate(labels):
        if index % every == 0:
            x = frame.x_center(index, len(labels))
            parts.append(f'<text x="{x:.1f}" y="{baseline + 16}" text-anchor="middle" class="tick">'
                         f"{_escape(label)}</text>")
    return parts


LEGEND_ROW_HEIGHT = 16


def _legend_rows(entries: Sequence[tuple[str, str, str]], width: int, left: int) -> list[list[tuple[float, tuple]]]:
    """Legend entries laid out left to right, wrapping to a new row at the chart's width."""
    rows: list[list[tuple[float, tuple]]] = [[]]
    x = left
    for entry in entries:
        entry_width = 26 + 6.5 * len(entry[0])
        if rows[-1] and x + entry_width > width - 8:
            rows.append([])
            x = left
        rows[-1].append((x, entry))
        x += entry_width
    return rows


def _legend_height(entries: Sequence[tuple[str, str, str]], width: int, left: int) -> int:
    return LEGEND_ROW_HEIGHT * len(_legend_rows(entries, width, left)) + 10


def _legend(frame: _Frame, entries: Sequence[tuple[str, str, str]]) -> list[str]:
    """entries: (name, color, kind) with kind line | dash | box; drawn along the top edge, wrapping."""
    parts = []
    for row_index, row in enumerate(_legend_rows(entries, frame.width, frame.left)):
        y = 9 + LEGEND_ROW_HEIGHT * row_index
        for x, (name, color, kind) in row:
            if kind == "box":
                parts.append(f'<rect x="{x:.1f}" y="{y - 5}" width="12" height="10" fill="{color}"/>')
            else:
                dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
                parts.append(f'<line x1="{x:.1f}" x2="{x + 14:.1f}" y1="{y}" y2="{y}" stroke="{color}" '
                             f'stroke-width="2.5"{dash}/>')
            parts.append(f'<text x="{x + 18:.1f}" y="{y + 4}" class="legend">{_escape(name)}</text>')
    return parts


def _polylines(frame: _Frame, series: Series, ticks: Sequence[float], count: int) -> list[str]:
    """One path per run of non-null values (a gap in the data is a gap in the line), plus dots."""
    runs: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(series.values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((frame.x_center(index, count), frame.y(value, ticks)))
    dash = ' stroke-dasharray="5 3"' if series.dashed else ""
    parts = []
    for run in (run for run in runs if run):
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{series.color}" stroke-width="2"{dash}/>')
        if count <= 36:
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{series.color}"/>' for x, y in run]
    return parts


def _value_range(values: Iterable[float | None], floor_zero: bool = True) -> tuple[float, float]:
    present = [value for value in values if value is not None]
    low = min(present, default=0.0)
    high = max(present, default=1.0)
    return (min(low, 0.0) if floor_zero else low), high


def line_chart_svg(x_labels: Sequence[str], series: Sequence[Series], y_format: Callable[[float], str],
                   label: str, *, width: int = 540, height: int = 240) -> str:
    """Lines over a categorical x axis (months, months on book)."""
    legend = [(s.name, s.color, "dash" if s.dashed else "line") for s in series]
    top = _legend_height(legend, width, 64)
    frame = _Frame(width, height + top, left=64, right=16, top=top, bottom=28)
    ticks = nice_ticks(*_value_range(value for s in series for value in s.values))
    parts = _svg_open(frame, label) + _y_axis(frame, ticks, y_format) + _x_axis(frame, x_labels)
    for entry in series:
        parts += _polylines(frame, entry, ticks, len(x_labels))
    parts += _legend(frame, legend)
    return "\n".join(parts + ["</svg>"])


def bar_line_chart_svg(x_labels: Sequence[str], bars: Series, line: Series, bar_format: Callable[[float], str],
                       line_format: Callable[[float], str], label: str, *, width: int = 540,
                       height: int = 260) -> str:
    """Bars on the left axis and a line on its own right axis (a flow beside a balance)."""
    legend = [(bars.name + " (left)", bars.color, "box"), (line.name + " (right)", line.color, "line")]
    top = _legend_height(legend, width, 64)
    frame = _Frame(width, height + top, left=64, right=64, top=top, bottom=28)
    bar_ticks = nice_ticks(*_value_range(bars.values))
    line_ticks = nice_ticks(*_value_range(line.values))
    parts = _svg_open(frame, label) + _y_axis(frame, bar_ticks, bar_format)
    parts += _y_axis(frame, line_ticks, line_format, side="right") + _x_axis(frame, x_labels)
    slot = frame.plot_width / max(len(x_labels), 1)
    for index, value in enumerate(bars.values):
        if value is None:
            continue
        top, base = frame.y(max(value, 0.0), bar_ticks), frame.y(min(value, 0.0), bar_ticks)
        x = frame.left + slot * index + slot * 0.18
        parts.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.64:.1f}" height="{max(base - top, 0.5):.1f}" '
                     f'fill="{bars.color}" opacity="0.85"><title>{_escape(x_labels[index])}: '
                     f"{_escape(bar_format(value))}</title></rect>")
    parts += _polylines(frame, line, line_ticks, len(x_labels))
    parts += _legend(frame, legend)
    return "\n".join(parts + ["</svg>"])


def stacked_bar_chart_svg(x_labels: Sequence[str], stacks: Sequence[Series], line: Series | None,
                          y_format: Callable[[float], str], label: str, *, width: int = 1100,
                          height: int = 300) -> str:
    """Stacked positive components per period (cash by source), optional balance line on a right axis."""
    legend = [(s.name, s.color, "box") for s in stacks] + ([(line.name + " (right)", line.color, "line")]
                                                           if line else [])
    top = _legend_height(legend, width, 64)
    frame = _Frame(width, height + top, left=64, right=64 if line else 16, top=top, bottom=28)
    totals = [sum(s.values[i] or 0.0 for s in stacks) for i in range(len(x_labels))]
    ticks = nice_ticks(0.0, max(totals, default=1.0) or 1.0)
    parts = _svg_open(frame, label) + _y_axis(frame, ticks, y_format) + _x_axis(frame, x_labels)
    slot = frame.plot_width / max(len(x_labels), 1)
    for index in range(len(x_labels)):
        running = 0.0
        for component in stacks:
            value = max(component.values[index] or 0.0, 0.0)
            if value <= 0:
                continue
            top, base = frame.y(running + value, ticks), frame.y(running, ticks)
            x = frame.left + slot * index + slot * 0.15
            parts.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" height="{base - top:.1f}" '
                         f'fill="{component.color}"><title>{_escape(x_labels[index])} {_escape(component.name)}: '
                         f"{_escape(y_format(value))}</title></rect>")
            running += value
    if line:
        line_ticks = nice_ticks(*_value_range(line.values))
        parts += _y_axis(frame, line_ticks, y_format, side="right")
        parts += _polylines(frame, line, line_ticks, len(x_labels))
    parts += _legend(frame, legend)
    return "\n".join(parts + ["</svg>"])


def heatmap_svg(row_labels: Sequence[str], column_labels: Sequence[str], values: dict[tuple[str, str], float],
                row_notes: dict[str, str], label: str, *, width: int = 1100) -> str:
    """A matrix of fractions (roll rates): darker is larger; every cell shows its percentage."""
    left, top, cell_height = 150, 44, 30
    cell_width = (width - left - 8) / max(len(column_labels), 1)
    height = top + cell_height * len(row_labels) + 8
    frame = _Frame(width, height, left=left, right=8, top=top, bottom=8)
    parts = _svg_open(frame, label)
    parts.append(f'<text x="{left}" y="14" class="legend">to bucket at month_end (columns), from bucket a month '
                 f"earlier (rows, with its balance)</text>")
    for column_index, column in enumerate(column_labels):
        x = left + cell_width * (column_index + 0.5)
        parts.append(f'<text x="{x:.1f}" y="{top - 8}" text-anchor="middle" class="tick">{_escape(column)}</text>')
    for row_index, row in enumerate(row_labels):
        y = top + cell_height * row_index
        parts.append(f'<text x="{left - 8}" y="{y + cell_height / 2 - 2:.1f}" text-anchor="end" class="tick">'
                     f"{_escape(row)}</text>")
        parts.append(f'<text x="{left - 8}" y="{y + cell_height / 2 + 10:.1f}" text-anchor="end" class="note">'
                     f"{_escape(row_notes.get(row, ''))}</text>")
        for column_index, column in enumerate(column_labels):
            rate = values.get((row, column))
            x = left + cell_width * column_index
            fill = _heat_color(rate)
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_width - 2:.1f}" height="{cell_height - 2}" '
                         f'fill="{fill}"><title>{_escape(row)} to {_escape(column)}: '
                         f"{_escape(format_percent(rate, 1))}</title></rect>")
            if rate is not None:
                ink = PAPER if rate >= 0.45 else INK
                parts.append(f'<text x="{x + cell_width / 2 - 1:.1f}" y="{y + cell_height / 2 + 3:.1f}" '
                             f'text-anchor="middle" class="cell" style="fill:{ink}">'
                             f"{_escape(format_percent(rate, 1))}</text>")
    return "\n".join(parts + ["</svg>"])


def _heat_color(rate: float | None) -> str:
    if rate is None:
        return "#f4f6f8"
    light, dark = (0xEA, 0xF1, 0xFA), (0x12, 0x3F, 0x7A)
    share = min(max(rate, 0.0), 1.0) ** 0.6
    red, green, blue = (round(a + (b - a) * share) for a, b in zip(light, dark))
    return f"#{red:02x}{green:02x}{blue:02x}"


def horizontal_bar_chart_svg(labels: Sequence[str], values: Sequence[float], value_format: Callable[[float], str],
                             label: str, *, width: int = 540, color: str = PALETTE[0]) -> str:
    """Ranked bars with their value printed at the end (top obligors)."""
    left, row_height, top = 190, 24, 8
    height = top + row_height * len(labels) + 8
    frame = _Frame(width, height, left=left, right=70, top=top, bottom=8)
    high = max(values, default=1.0) or 1.0
    parts = _svg_open(frame, label)
    for index, (name, value) in enumerate(zip(labels, values)):
        y = top + row_height * index
        bar = frame.plot_width * max(value, 0.0) / high
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" class="tick">{_escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 4}" width="{max(bar, 1):.1f}" height="{row_height - 8}" '
                     f'fill="{color}"/>')
        parts.append(f'<text x="{left + bar + 6:.1f}" y="{y + 16}" class="tick">{_escape(value_format(value))}</text>')
    return "\n".join(parts + ["</svg>"])


def _vintage_colors(count: int) -> list[str]:
    """Oldest vintage light, newest dark: the eye reads the cohort order without a legend lookup."""
    light, dark = (0x9E, 0xC5, 0xE8), (0x0B, 0x2E, 0x5C)
    colors = []
    for index in range(count):
        share = index / max(count - 1, 1)
        red, green, blue = (round(a + (b - a) * share) for a, b in zip(light, dark))
        colors.append(f"#{red:02x}{green:02x}{blue:02x}")
    return colors


# ---------------------------------------------------------------------------------------------
# Reading the warehouse
# ---------------------------------------------------------------------------------------------

@dataclass
class BoardData:
    """Everything one pack shows, read in one read-only session (lists of row dicts)."""

    month_end: dt.date
    portfolio: list[dict[str, Any]]
    board: list[dict[str, Any]] | None
    roll_rates: list[dict[str, Any]] | None
    vintages: list[dict[str, Any]] | None
    top_obligors: list[dict[str, Any]] | None
    segments: list[dict[str, Any]] | None
    cashflow: list[dict[str, Any]] | None
    cashflow_as_of: dt.date | None
    covenants: list[dict[str, Any]] | None
    borrowing_base: list[dict[str, Any]] | None
    credit_loss: list[dict[str, Any]] | None = None
    row_counts: dict[str, int] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """SHA-256 of every row the pack shows: two packs with the same fingerprint show the same data."""
        payload = {name: getattr(self, name) for name in (
            "portfolio", "board", "roll_rates", "vintages", "top_obligors", "segments", "cashflow", "covenants",
            "borrowing_base", "credit_loss")}
        text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def row(self) -> dict[str, Any]:
        return next(row for row in self.portfolio if row["month_end"] == self.month_end)


def _existing_tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    return {f"{schema}.{table}" for schema, table in connection.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}


def _fetch(connection: duckdb.DuckDBPyConnection, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = connection.execute(sql, list(parameters))
    names = [column[0] for column in cursor.description]
    return [{name: (float(value) if isinstance(value, Decimal) else value) for name, value in zip(names, row)}
            for row in cursor.fetchall()]


@contextlib.contextmanager
def reading(warehouse: Path, connection: duckdb.DuckDBPyConnection | None = None
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse, or the caller's (one connection for many packs)."""
    if connection is not None:
        yield connection
        return
    with duckdb.connect(str(warehouse), read_only=True) as opened:
        yield opened


def available_month_ends(warehouse: Path, connection: duckdb.DuckDBPyConnection | None = None) -> list[dt.date]:
    """The month_ends of marts.kpi_portfolio_monthly, oldest first ([] before the marts exist)."""
    if connection is None and not Path(warehouse).exists():
        return []
    with reading(warehouse, connection) as connection:
        if "marts.kpi_portfolio_monthly" not in _existing_tables(connection):
            return []
        return [row[0] for row in connection.execute(
            "select month_end from marts.kpi_portfolio_monthly order by month_end").fetchall()]


def read_board_data(warehouse: Path, month_end: dt.date,
                    connection: duckdb.DuckDBPyConnection | None = None) -> BoardData:
    """Read what the pack of ``month_end`` shows: history up to month_end, never after it."""
    with reading(warehouse, connection) as connection:
        tables = _existing_tables(connection)
        if "marts.kpi_portfolio_monthly" not in tables:
            raise FileNotFoundError(f"{warehouse} has no marts.kpi_portfolio_monthly: build the marts first")

        def optional(table: str, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]] | None:
            return _fetch(connection, sql, parameters) if table in tables else None

        portfolio = _fetch(connection, f"""
            select * from (
                select * from marts.kpi_portfolio_monthly where month_end <= ?
                order by month_end desc limit {TREND_MONTHS}
            ) order by month_end""", [month_end])
        if not portfolio or portfolio[-1]["month_end"] != month_end:
            raise ValueError(f"marts.kpi_portfolio_monthly has no row for month_end {month_end}")
        first_shown = portfolio[0]["month_end"]
        cashflow = None
        cashflow_as_of = None
        if "metrics.metric_cashflow_projection" in tables:
            cashflow = _fetch(connection, "select * from metrics.metric_cashflow_projection where as_of = ? "
                                          "order by projection_month", [month_end]) or None
            latest = connection.execute("select max(as_of) from metrics.metric_cashflow_projection").fetchone()
            cashflow_as_of = latest[0] if latest else None
        data = BoardData(
            month_end=month_end,
            portfolio=portfolio,
            board=optional("marts.board_monthly_pack",
                           "select * from marts.board_monthly_pack where month_end between ? and ? order by month_end",
                           [first_shown, month_end]),
            roll_rates=optional("marts.kpi_roll_rates",
                                "select * from marts.kpi_roll_rates where month_end = ?", [month_end]),
            vintages=optional("marts.kpi_vintage_curves", f"""
                select * from marts.kpi_vintage_curves
                where month_end <= ? and vintage_month in (
                    select distinct vintage_month from marts.kpi_vintage_curves where vintage_month <= ?
                    order by vintage_month desc limit {VINTAGES_SHOWN})
                order by vintage_month, months_on_book""", [month_end, month_end]),
            top_obligors=optional("marts.risk_top_obligors",
                                  "select * from marts.risk_top_obligors where month_end = ? order by opb_rank",
                                  [month_end]),
            segments=optional("marts.risk_par_ladder_by_segment",
                              "select * from marts.risk_par_ladder_by_segment where month_end = ? order by opb desc",
                              [month_end]),
            cashflow=cashflow,
            cashflow_as_of=cashflow_as_of,
            covenants=optional("metrics.metric_covenants",
                               "select * from metrics.metric_covenants where month_end = ? order by covenant",
                               [month_end]),
            borrowing_base=optional("metrics.metric_borrowing_base",
                                    "select * from metrics.metric_borrowing_base where month_end = ?", [month_end]),
            credit_loss=optional("metrics.metric_expected_credit_loss",
                                 "select * from metrics.metric_expected_credit_loss where month_end = ?", [month_end]),
        )
    data.row_counts = {name: len(rows) for name, rows in (
        ("marts.kpi_portfolio_monthly", data.portfolio), ("marts.board_monthly_pack", data.board),
        ("marts.kpi_roll_rates", data.roll_rates), ("marts.kpi_vintage_curves", data.vintages),
        ("marts.risk_top_obligors", data.top_obligors), ("marts.risk_par_ladder_by_segment", data.segments),
        ("metrics.metric_cashflow_projection", data.cashflow), ("metrics.metric_covenants", data.covenants),
        ("metrics.metric_borrowing_base", data.borrowing_base),
        ("metrics.metric_expected_credit_loss", data.credit_loss)) if rows is not None}
    return data


# ---------------------------------------------------------------------------------------------
# The HTML
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Provenance:
    """Where the numbers come from, printed in the pack's header and footer."""

    warehouse: str
    generated_at: dt.datetime
    code_revision: str | None = None
    run_id: str | None = None


class _Labels:
    """KPI labels and formulas from the metric store (the column name when the store lacks it)."""

    def __init__(self, store: MetricStore | None):
        self._by_column: dict[str, tuple[str, str, str]] = {}
        if store is not None:
            for kpi in store.kpis:
                for _, ref in kpi.columns():
                    self._by_column.setdefault(f"{ref.model}.{ref.column}", (kpi.label, kpi.formula, kpi.unit))

    def label(self, model: str, column: str) -> str:
        return self._by_column.get(f"{model}.{column}", (column, "", ""))[0]

    def formula(self, model: str, column: str) -> str:
        return self._by_column.get(f"{model}.{column}", ("", "", ""))[1]


_CSS = """
:root { --ink: #1d2733; --muted: #5f6b7a; --line: #e3e7ec; --accent: #1f5fa8; --ok: #1e7a4c; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f8; color: var(--ink);
       font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.masthead { background: #12263f; color: #fff; padding: 22px 32px 18px; }
header.masthead h1 { margin: 0 0 4px; font-size: 24px; font-weight: 600; }
header.masthead .asof { font-size: 16px; opacity: .9; }
header.masthead dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 12px 0 0;
                     font-size: 12px; opacity: .85; }
header.masthead dt { font-weight: 600; }
header.masthead dd { margin: 0; word-break: break-all; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 40px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px; }
section.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px;
                break-inside: avoid; page-break-inside: avoid; }
section.panel h2 { margin: 0 0 4px; font-size: 16px; }
section.panel p.lede { margin: 0 0 10px; color: var(--muted); font-size: 12.5px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(128px, 1fr)); gap: 10px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.tile .name { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile .value { font-size: 21px; font-weight: 600; margin-top: 2px; }
.tile .change { font-size: 12px; color: var(--muted); }
svg.chart { display: block; max-width: 100%; height: auto; }
svg.chart text { font-family: inherit; fill: var(--muted); }
svg.chart text.legend { font-size: 12px; fill: var(--ink); }
svg.chart text.tick { font-size: 11px; }
svg.chart text.note { font-size: 10px; }
svg.chart text.cell { font-size: 11px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: right; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th:first-child, td:first-child { text-align: left; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
.badge { display: inline-block; min-width: 52px; text-align: center; border-radius: 10px; padding: 1px 8px;
         font-size: 12px; font-weight: 700; color: #fff; }
.badge.pass { background: var(--ok); } .badge.fail { background: var(--bad); } .badge.na { background: #8a94a0; }
.missing { border: 1px dashed #b8c1cc; border-radius: 6px; padding: 18px; color: var(--muted); background: #fafbfc; }
.figures { display: flex; gap: 28px; margin: 4px 0 10px; }
.figures div span { display: block; color: var(--muted); font-size: 12px; }
.figures div strong { font-size: 18px; }
footer { max-width: 1180px; margin: 0 auto; padding: 0 24px 32px; color: var(--muted); font-size: 12px; }
@page { size: A4 landscape; margin: 10mm; }
@media print { body { background: #fff; } main { padding: 8px 0; } .grid { grid-template-columns: 1fr 1fr; } }
"""


def _panel(section_id: str, title: str, lede: str, body: str, *, wide: bool = False) -> str:
    style = ' style="grid-column: 1 / -1"' if wide else ""
    return (f'<section class="panel" id="{section_id}"{style}><h2>{_escape(title)}</h2>'
            f'<p class="lede">{_escape(lede)}</p>{body}</section>')


def _missing(message: str) -> str:
    return f'<div class="missing" role="note">{_escape(message)}</div>'


def _tiles(data: BoardData, labels: _Labels) -> str:
    row = data.row()
    board = {entry["month_end"]: entry for entry in data.board or []}.get(data.month_end, {})
    previous = data.portfolio[-2] if len(data.portfolio) >= 2 else None

    def change(column: str, unit: str) -> str:
        if previous is None or row.get(column) is None or previous.get(column) is None:
            return ""
        delta = float(row[column]) - float(previous[column])
        arrow = "▲" if delta > 0 else ("▼" if delta < 0 else "■")
        amount = format_usd(abs(delta), compact=True) if unit == "usd" else f"{abs(delta) * 100:.2f} pp"
        return f"{arrow} {amount} vs {month_label(previous['month_end'])}"

    tiles = [
        ("opb", format_usd(row["opb"], compact=True), change("opb", "usd")),
        ("disbursed_amount", format_usd(row["disbursed_amount"], compact=True),
         f"{format_count(row['disbursed_loans'])} loan{'' if row['disbursed_loans'] == 1 else 's'}"),
        ("par30", format_percent(row["par30"]), change("par30", "ratio")),
        ("npl_ratio", format_percent(row["npl_ratio"]), change("npl_ratio", "ratio")),
        ("collection_rate", format_percent(row["collection_rate"], 1), change("collection_rate", "ratio")),
        ("revenue", format_usd(row["revenue"], compact=True), ""),
        ("yield_12m", format_percent(row["yield_12m"]), change("yield_12m", "ratio")),
        ("writeoff_amount", format_usd(row["writeoff_amount"], compact=True),
         f"net of recoveries {format_usd(board['net_credit_loss'], compact=True)}"
         if board.get("net_credit_loss") is not None else ""),
    ]
    cells = []
    for column, value, note in tiles:
        formula = labels.formula("kpi_portfolio_monthly", column)
        cells.append(f'<div class="tile" title="{_escape(formula)}"><div class="name">'
                     f'{_escape(labels.label("kpi_portfolio_monthly", column))}</div>'
                     f'<div class="value">{_escape(value)}</div><div class="change">{_escape(note)}</div></div>')
    return f'<section id="headline" class="tiles" aria-label="Headline figures">{"".join(cells)}</section>'


def _opb_trend(data: BoardData) -> str:
    months = [month_label(row["month_end"]) for row in data.portfolio]
    chart = bar_line_chart_svg(
        months,
        Series("Disbursements", [_number(row["disbursed_amount"]) for row in data.portfolio], PALETTE[1]),
        Series("OPB", [_number(row["opb"]) for row in data.portfolio], PALETTE[0]),
        lambda value: format_usd(value, compact=True), lambda value: format_usd(value, compact=True),
        "OPB and monthly disbursements")
    return _panel("opb-trend", "Book and disbursements",
                  "Outstanding principal of the active book at each month-end (line) and principal disbursed "
                  "in the month (bars).", chart)


def _par_ladder(data: BoardData, labels: _Labels) -> str:
    months = [month_label(row["month_end"]) for row in data.portfolio]
    series = [Series(labels.label("kpi_portfolio_monthly", column),
                     [_number(row[column]) for row in data.portfolio], PALETTE[index % len(PALETTE)],
                     dashed=column == "npl180_ratio")
              for index, column in enumerate(PAR_LADDER)]
    chart = line_chart_svg(months, series, lambda value: format_percent(value, 1), "PAR ladder over time")
    body = chart
    if data.segments:
        rows = "".join(
            f"<tr><td>{_escape(row['segment'])}</td><td>{format_usd(row['opb'])}</td>"
            f"<td>{format_percent(row['opb_share_of_book'], 1)}</td><td>{format_percent(row['par30'])}</td>"
            f"<td>{format_percent(row['par90'])}</td></tr>" for row in data.segments)
        body += ("<table><thead><tr><th>Segment</th><th>OPB</th><th>Share of book</th><th>PAR30</th>"
                 f"<th>PAR90</th></tr></thead><tbody>{rows}</tbody></table>")
    return _panel("par-ladder", "Portfolio at risk",
                  "Share of the book past due by at least 1, 7, 15, 30, 60, 90 and 180 days, and PAR by segment "
                  "this month.", body)


def _vintage_curves(data: BoardData) -> str:
    if not data.vintages:
        return _panel("vintage-curves", "Vintage default curves", "", _missing("No vintage curves yet."))
    by_vintage: dict[dt.date, dict[int, float | None]] = {}
    for row in data.vintages:
        by_vintage.setdefault(row["vintage_month"], {})[int(row["months_on_book"])] = _number(row["cum_default_rate"])
    horizon = max(month for points in by_vintage.values() for month in points)
    colors = _vintage_colors(len(by_vintage))
    series = [Series(vintage.strftime("%b %y"), [points.get(month) for month in range(horizon + 1)], color)
              for (vintage, points), color in zip(sorted(by_vintage.items()), colors)]
    chart = line_chart_svg([str(month) for month in range(horizon + 1)], series,
                           lambda value: format_percent(value, 1),
                           "Cumulative default rate by months on book, per vintage")
    return _panel("vintage-curves", "Vintage default curves",
                  f"Cumulative default rate (first 90+ DPD or write-off, at exposure then) by months on book, "
                  f"latest {len(by_vintage)} disbursement vintages; older cohorts lighter.", chart)


def _roll_rates(data: BoardData) -> str:
    lede = ("Share of each DPD bucket's balance a month earlier that sits in each bucket now (OPB-weighted); "
            "rows sum to 100%.")
    if not data.roll_rates:
        return _panel("roll-rates", "Roll rates", lede, _missing(
            "No roll rates for this month: the previous calendar month has no month-end tape."))
    values = {(row["from_bucket"], row["to_bucket"]): _number(row["rate"]) for row in data.roll_rates}
    balances: dict[str, float] = {}
    for row in data.roll_rates:
        balances[row["from_bucket"]] = balances.get(row["from_bucket"], 0.0) + float(row["opb_from"])
    rows = [bucket for bucket in ACTIVE_BUCKETS if bucket in balances]
    chart = heatmap_svg(rows, ALL_BUCKETS, values,
                        {bucket: format_usd(balances[bucket], compact=True) for bucket in rows},
                        f"Roll-rate matrix into {data.month_end:%B %Y}")
    return _panel("roll-rates", "Roll rates", lede, chart, wide=True)


def _cashflow(data: BoardData) -> str:
    title = "Cashflow projection"
    if not data.cashflow:
        detail = (f"the latest projection is as of {data.cashflow_as_of}" if data.cashflow_as_of
                  else "metrics.metric_cashflow_projection does not exist yet")
        return _panel("cashflow", title, "Projected monthly cash of the active book.", _missing(
            f"Cashflow projection not yet computed for {data.month_end} ({detail}). It is computed for the "
            f"latest month-end by the metric asset metrics/metric_cashflow_projection."))
    months = [month_label(row["projected_month_end"]) for row in data.cashflow]
    components = [("Scheduled principal", "scheduled_principal", PALETTE[0]),
                  ("Interest", "interest", PALETTE[2]),
                  ("Prepayment", "prepayment", PALETTE[4]),
                  ("Recoveries", "recoveries", PALETTE[1])]
    chart = stacked_bar_chart_svg(
        months, [Series(name, [_number(row[column]) for row in data.cashflow], color)
                 for name, column, color in components],
        Series("Closing balance", [_number(row["closing_balance"]) for row in data.cashflow], PALETTE[3]),
        lambda value: format_usd(value, compact=True), "Projected monthly cash by source")
    first = data.cashflow[0]
    total = sum(float(row["net_cash"] or 0) for row in data.cashflow)
    figures = (f'<div class="figures"><div><span>Net cash, {len(data.cashflow)} months</span>'
               f"<strong>{format_usd(total, compact=True)}</strong></div>"
               f"<div><span>MDR / CDR</span><strong>{format_percent(first['mdr'])} / "
               f"{format_percent(first['cdr'], 1)}</strong></div>"
               f"<div><span>SMM / CPR</span><strong>{format_percent(first['smm'])} / "
               f"{format_percent(first['cpr'], 1)}</strong></div>"
               f"<div><span>Severity, lag</span><strong>{format_percent(first['severity'], 1)}, "
               f"{format_count(first['recovery_lag_months'])} months</strong></div></div>")
    return _panel("cashflow", title,
                  "Projected monthly cash of the active book under the trailing 6-month default and prepayment "
                  "rates (bars) and the remaining balance (line).", figures + chart, wide=True)


_COVENANT_NAMES = {
    "npl180": "NPL180 ratio",
    "top10_concentration": "Top-10 concentration",
    "single_obligor": "Single obligor",
    "collection_rate_6m": "Collection rate (6 months)",
}


def _covenants(data: BoardData) -> str:
    title, lede = "Covenants", "Guardrails of the credit facility, measured on this month-end."
    if not data.covenants:
        return _panel("covenants", title, lede, _missing(
            f"Covenant results not yet computed for {data.month_end} (metric asset metrics/metric_covenants)."))
    rows = []
    for row in data.covenants:
        passed = row["passed"]
        badge = ('<span class="badge na">N/A</span>' if passed is None else
                 '<span class="badge pass">PASS</span>' if passed else '<span class="badge fail">FAIL</span>')
        rows.append(f"<tr><td>{_escape(_COVENANT_NAMES.get(row['covenant'], row['covenant']))}</td>"
                    f"<td>{format_percent(row['measured_value'])}</td>"
                    f"<td>{_escape(row['operator'])} {format_percent(row['threshold'], 0)}</td><td>{badge}</td></tr>")
    body = ("<table><thead><tr><th>Covenant</th><th>Measured</th><th>Limit</th><th>Result</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
    if data.borrowing_base:
        base = data.borrowing_base[0]
        body += (f'<div class="figures" style="margin-top:12px"><div><span>Eligible OPB</span>'
                 f"<strong>{format_usd(base['eligible_opb'])}</strong></div><div><span>Advance rate</span>"
                 f"<strong>{format_percent(base['advance_rate'], 0)}</strong></div><div><span>Borrowing base</span>"
                 f"<strong>{format_usd(base['borrowing_base'])}</strong></div></div>")
    return _panel("covenants", title, lede, body)


def _credit_loss(data: BoardData) -> str:
    title = "Expected credit loss"
    lede = ("IFRS 9 style ECL (management estimate): PD x LGD x EAD by stage, per segment and for the book; "
            "coverage = ECL / balance 30+ days past due.")
    rows = [row for row in data.credit_loss or [] if row["scope"] in ("segment", "book")]
    if not rows:
        return _panel("credit-loss", title, lede, _missing(
            f"Expected credit loss not yet computed for {data.month_end} "
            f"(metric asset metrics/metric_expected_credit_loss)."))
    rows.sort(key=lambda row: (row["scope"] == "book", -(row["ead"] or 0)))
    bold = ' style="font-weight:600"'
    body = "".join(
        f"<tr{bold if row['scope'] == 'book' else ''}>"
        f"<td>{_escape('Book' if row['scope'] == 'book' else row['segment'])}</td>"
        f"<td>{format_usd(row['ead'])}</td><td>{format_usd(row['ecl'])}</td>"
        f"<td>{format_percent(None if not row['ead'] or row['ecl'] is None else float(row['ecl']) / float(row['ead']))}</td>"
        f"<td>{format_usd(row['par30_amount'])}</td><td>{format_percent(row['coverage'], 1)}</td></tr>"
        for row in rows)
    table = ("<table><thead><tr><th>Segment</th><th>EAD</th><th>ECL</th><th>ECL / EAD</th><th>PAR30 balance</th>"
             f"<th>Coverage</th></tr></thead><tbody>{body}</tbody></table>")
    return _panel("credit-loss", title, lede, table)


def _concentration(data: BoardData, labels: _Labels) -> str:
    row = data.row()
    top10_label = labels.label("kpi_portfolio_monthly", "top10_concentration")
    figures = (f'<div class="figures"><div><span>{_escape(top10_label)}'
               f"</span><strong>{format_percent(row['top10_concentration'], 1)}</strong></div>"
               f'<div><span>{_escape(labels.label("kpi_portfolio_monthly", "hhi"))}</span>'
               f"<strong>{'n/a' if row['hhi'] is None else format(float(row['hhi']), '.4f')}</strong></div>"
               f"<div><span>Active customers</span><strong>{format_count(row['active_customers'])}</strong>"
               f"</div></div>")
    if not data.top_obligors:
        body = figures + _missing("Top obligors not available (marts.risk_top_obligors).")
    else:
        names = [f"{obligor['opb_rank']}. {obligor['customer_id']} ({obligor['segment'] or 'n/a'})"
                 for obligor in data.top_obligors]
        shares = [_number(obligor["obligor_opb_share"]) or 0.0 for obligor in data.top_obligors]
        chart = horizontal_bar_chart_svg(names, shares, lambda value: format_percent(value, 2),
                                         "Ten largest obligors, share of OPB")
        body = figures + chart
    return _panel("concentration", "Concentration",
                  "The ten largest obligors' share of the book (single-obligor limit 4 %) and the "
                  "Herfindahl-Hirschman index of customer balances.", body)


def render_board_pack(data: BoardData, provenance: Provenance, store: MetricStore | None = None) -> str:
    """The whole report as one HTML string: inline CSS and SVG, no script, nothing external."""
    labels = _Labels(store)
    sources = ", ".join(f"{table} ({count} rows)" for table, count in sorted(data.row_counts.items()))
    meta = [("Data as of", f"month-end snapshot {data.month_end.isoformat()} (Cascade tape of that date)"),
            ("Generated", provenance.generated_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            ("Warehouse", provenance.warehouse),
            ("Sources", sources),
            ("Data fingerprint", f"sha256 {data.fingerprint()}")]
    if provenance.code_revision:
        meta.append(("Code revision", provenance.code_revision))
    if provenance.run_id:
        meta.append(("Run", provenance.run_id))
    header_meta = "".join(f"<dt>{_escape(name)}</dt><dd>{_escape(value)}</dd>" for name, value in meta)
    panels = [_opb_trend(data), _par_ladder(data, labels), _vintage_curves(data), _covenants(data),
              _roll_rates(data), _concentration(data, labels), _credit_loss(data), _cashflow(data)]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="abaco_assets.lib.board_pack">
<meta name="abaco:month-end" content="{data.month_end.isoformat()}">
<meta name="abaco:data-fingerprint" content="{data.fingerprint()}">
<title>Abaco board pack, {data.month_end:%B %Y}</title>
<style>{_CSS}</style>
</head>
<body>
<header class="masthead">
<h1>Abaco board pack</h1>
<div class="asof">{data.month_end:%B %Y}: as of {data.month_end.isoformat()}</div>
<dl>{header_meta}</dl>
</header>
<main>
{_tiles(data, labels)}
<div class="grid" style="margin-top:18px">
{''.join(panels)}
</div>
</main>
<footer>Figures are read from the KPI marts and the Python metric tables named under Sources; ratios are
fractions shown as percentages, amounts in USD. Definitions: the metric store
(dbt_project/models/*/_metric_store.yml, dbt_project/metric_store/python_metrics.yml).
The expected credit loss and cashflow projection are management estimates, not statutory figures.</footer>
</body>
</html>
"""


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BoardPackResult:
    month_end: dt.date
    html_path: Path
    pdf_path: Path | None
    pdf_note: str | None
    data_fingerprint: str
    sections_missing: tuple[str, ...]
    rewritten: bool = True  # False: the pack on disk already showed these inputs and was kept


def _write_atomically(target: Path, content: bytes) -> None:
    """Temp file in the same folder + rename: a reader never sees half a report."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def find_chromium() -> str | None:
    """ABACO_CHROMIUM, else Debian's chromium on PATH; None when neither exists (PDF is then skipped)."""
    configured = os.environ.get("ABACO_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_flags(user_data_dir: Path) -> list[str]:
    """Headless, no network of its own, throwaway profile; no sandbox only when running as root."""
    flags = ["--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
             f"--user-data-dir={user_data_dir}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.insert(1, "--no-sandbox")
    return flags


def print_pdf(html_path: Path, pdf_path: Path, chromium: str) -> None:
    """Print ``html_path`` to ``pdf_path`` with headless chromium, atomically."""
    with tempfile.TemporaryDirectory(prefix="abaco-chromium-") as profile:
        temp_pdf = pdf_path.parent / f".{pdf_path.name}.{secrets.token_hex(4)}"
        command = [chromium, *chromium_flags(Path(profile)), "--no-pdf-header-footer",
                   f"--print-to-pdf={temp_pdf}", html_path.resolve().as_uri()]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=PDF_TIMEOUT_SECONDS)
            if completed.returncode != 0 or not temp_pdf.exists() or temp_pdf.stat().st_size == 0:
                raise RuntimeError(f"chromium could not print {html_path} (exit {completed.returncode}): "
                                   f"{completed.stderr[-2000:]}")
            os.replace(temp_pdf, pdf_path)
        finally:
            temp_pdf.unlink(missing_ok=True)


def report_path(reports_dir: Path, month_end: dt.date) -> Path:
    return Path(reports_dir) / month_end.isoformat() / "board_pack.html"


def write_board_pack(warehouse: Path, reports_dir: Path, month_end: dt.date | None = None, *,
                     pdf: bool = True, code_revision: str | None = None, run_id: str | None = None,
                     now: dt.datetime | None = None, store: MetricStore | None = None,
                     keep_if_unchanged: bool = False,
                     connection: duckdb.DuckDBPyConnection | None = None) -> BoardPackResult:
    """Render the pack of ``month_end`` (default: the latest) to ``<reports_dir>/<month_end>/board_pack.html``.

    With ``pdf`` and a chromium on the machine, also ``board_pack.pdf`` beside it; without chromium the PDF
    is skipped and ``pdf_note`` says why (it is logged, not raised: the HTML is the deliverable).

    ``keep_if_unchanged``: when the pack on disk was rendered from the same rows by the same renderer
    (and has its PDF if one is asked for), keep it instead of rendering it again; a new day of
    collections then costs nothing for the 24 month-ends whose packs it does not change.
    """
    with reading(warehouse, connection) as connection:
        month_ends = available_month_ends(warehouse, connection)
        if not month_ends:
            raise FileNotFoundError(f"no marts.kpi_portfolio_monthly rows in {warehouse}: build the marts first")
        chosen = month_end or month_ends[-1]
        data = read_board_data(warehouse, chosen, connection)
    if store is None:
        try:
            store = load_metric_store()
        except MetricStoreError as error:  # labels fall back to column names; the numbers are unaffected
            log.warning("metric store unreadable, the board pack uses column names as labels: %s", error)
    provenance = Provenance(warehouse=str(Path(warehouse).resolve()),
                            generated_at=now or dt.datetime.now(dt.timezone.utc),
                            code_revision=code_revision, run_id=run_id)
    html_path = report_path(reports_dir, chosen)
    inputs = {"data_fingerprint": data.fingerprint(), "renderer": _renderer_fingerprint(store)}
    inputs_path = html_path.with_name(INPUTS_NAME)
    missing = tuple(name for name, rows in (
        ("cashflow", data.cashflow), ("covenants", data.covenants), ("roll-rates", data.roll_rates),
        ("vintage-curves", data.vintages), ("concentration", data.top_obligors),
        ("credit-loss", data.credit_loss)) if not rows)
    if keep_if_unchanged and read_json_record(inputs_path) == inputs and html_path.exists() and (
            not pdf or find_chromium() is None or html_path.with_suffix(".pdf").exists()):
        kept_pdf = html_path.with_suffix(".pdf")
        return BoardPackResult(month_end=chosen, html_path=html_path, pdf_path=kept_pdf if kept_pdf.exists() else None,
                               pdf_note=None, data_fingerprint=inputs["data_fingerprint"], sections_missing=missing,
                               rewritten=False)
    document = render_board_pack(data, provenance, store)
    _write_atomically(html_path, document.encode("utf-8"))
    pdf_path, pdf_note = None, None
    if pdf:
        chromium = find_chromium()
        if chromium is None:
            pdf_note = "PDF skipped: no chromium on this machine (apt-get install chromium, or set ABACO_CHROMIUM)"
            log.info(pdf_note)
        else:
            pdf_path = html_path.with_suffix(".pdf")
            print_pdf(html_path, pdf_path, chromium)
    _write_atomically(inputs_path, json.dumps(inputs, indent=1).encode())
    return BoardPackResult(month_end=chosen, html_path=html_path, pdf_path=pdf_path, pdf_note=pdf_note,
                           data_fingerprint=inputs["data_fingerprint"], sections_missing=missing)


INPUTS_NAME = "board_pack.inputs.json"


def _renderer_fingerprint(store: MetricStore | None) -> str:
    """This renderer's code and the metric store's labels: a change in either re-renders every pack."""
    source = Path(__file__).read_bytes()
    labels = store.model_dump_json().encode() if store is not None else b""
    return hashlib.sha256(source + b"\0" + labels).hexdigest()
