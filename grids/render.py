"""Printable maps (客户分布地图) with matplotlib: title, legend, scale bar, north arrow, households by status.

Drawn in the Gauss-Krüger zone of the data, so the scale bar is true. Chinese text needs a CJK font: we point
matplotlib at one explicitly (Debian's ``fonts-noto-cjk``, installed by ``scripts/setup.sh``; or any font
listed in :data:`CJK_FONT_FILES`, or the file in the ``GRIDS_CJK_FONT`` environment variable) and raise a
clear error when none is installed, instead of printing empty boxes.

Titles, grid, branch and staff names come from data: they are drawn literally (:func:`grids.text.mathtext`),
so a ``$…$`` in a name shows its dollar signs instead of starting matplotlib mathtext (or crashing it).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids import text
from grids.crs import gk_crs_for
from grids.errors import GridsError
from grids.household_status import STATUS_COLORS, STATUS_ORDER, household_status

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType
    from shapely.geometry import Point
    from shapely.geometry.base import BaseGeometry

__all__ = ["CJK_FONT_FILES", "cjk_font", "nice_length", "render_map"]

CJK_FONT_FILES: tuple[str, ...] = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
"""Font files tried, in order, for Chinese text."""

_PREFERRED_FAMILIES = ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "AR PL UMing CN")


class FontMissingError(GridsError):
    """No font with Chinese glyphs is installed."""


@cache
def cjk_font() -> str:
    """Register a CJK font with matplotlib and return its family name.

    Raises
    ------
    FontMissingError
        No CJK font found; the message says how to install one.
    """
    from matplotlib import font_manager

    candidates = [os.environ["GRIDS_CJK_FONT"]] if os.environ.get("GRIDS_CJK_FONT") else []
    candidates += list(CJK_FONT_FILES)
    for path in candidates:
        if not os.path.exists(path):
            continue
        before = {f.name for f in font_manager.fontManager.ttflist}
        font_manager.fontManager.addfont(path)
        names = {f.name for f in font_manager.fontManager.ttflist if f.fname == path} | (
            {f.name for f in font_manager.fontManager.ttflist} - before)
        for family in _PREFERRED_FAMILIES:
            if family in names:
                return family
        if names:
            return sorted(names)[0]
    raise FontMissingError(
        "找不到中文字体，地图上的中文会显示成方框。修正方法：运行 scripts/setup.sh（安装 fonts-noto-cjk），"
        "或 `sudo apt-get install fonts-noto-cjk`，或把环境变量 GRIDS_CJK_FONT 设为一个中文字体文件（.ttf/.ttc/.otf）"
    )


def nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10ⁿ metres) of about a fifth of ``span_m``.

    Examples
    --------
    >>> nice_length(10_000), nice_length(3_100), nice_length(900)
    (2000.0, 500.0, 100.0)
    """
    target = max(span_m / 5.0, 1e-9)
    exp = 10 ** np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * exp <= target:
            return float(m * exp)
    return float(exp)


def _length_label(metres: float) -> str:
    return f"{metres / 1000:g} 公里" if metres >= 1000 else f"{metres:g} 米"


def _draw_page(fig: Figure, households: gpd.GeoDataFrame, status: pd.Series, grids: gpd.GeoDataFrame,
               branches: gpd.GeoDataFrame | None, *, title: str, subtitle: str, label_grids: bool) -> None:
    from matplotlib import patheffects
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrow, Patch, Rectangle

    ax = fig.add_axes((0.03, 0.07, 0.78, 0.82))
    ax.set_aspect("equal")
    ax.set_axis_off()
    grids.plot(ax=ax, facecolor="#eef2fb", edgecolor="#3040c0", linewidth=1.0)
    if label_grids:
        for g in grids.itertuples(index=False):
            p = cast("BaseGeometry", g.geometry).representative_point()
            ax.annotate(text.mathtext(getattr(g, "name", None) or g.code), (p.x, p.y), ha="center", va="center",
                        fontsize=8, color="#1a237e", zorder=5,
                        path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")])
    handles: list[Artist] = [Patch(facecolor="#eef2fb", edgecolor="#3040c0", label="网格")]
    geoms = np.asarray(households.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) if len(geoms) else np.zeros(0, dtype=bool)
    for s in STATUS_ORDER:
        mask = ok & (status.to_numpy() == s)
        n = int((status.to_numpy() == s).sum())
        if mask.any():
            ax.scatter(shapely.get_x(geoms[mask]), shapely.get_y(geoms[mask]), s=14, c=STATUS_COLORS[s],
                       edgecolors="white", linewidths=0.3, zorder=3)
        handles.append(Line2D([], [], marker="o", linestyle="", color=STATUS_COLORS[s], label=f"{s}（{n} 户）"))
    if branches is not None and len(branches):
        ax.scatter(branches.geometry.x, branches.geometry.y, marker="s", s=60, c="#000000", zorder=4)
        for b in branches.itertuples(index=False):
            point = cast("Point", b.geometry)
            ax.annotate(text.mathtext(b.name), (point.x, point.y), xytext=(4, 4), textcoords="offset points",
                        fontsize=8, zorder=5)
        handles.append(Line2D([], [], marker="s", linestyle="", color="#000000", label="营业网点"))
    minx, miny, maxx, maxy = grids.total_bounds
    pad = 0.06 * max(maxx - minx, maxy - miny, 1.0)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, title="图例",
              title_fontsize=10, frameon=True)
    # scale bar (metres: the axes are in the Gauss-Krüger zone)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = nice_length(x1 - x0)
    bx, by, h = x0 + 0.04 * (x1 - x0), y0 + 0.04 * (y1 - y0), 0.012 * (y1 - y0)
    ax.add_patch(Rectangle((bx, by), length / 2, h, facecolor="black", edgecolor="black", zorder=6))
    ax.add_patch(Rectangle((bx + length / 2, by), length / 2, h, facecolor="white", edgecolor="black", zorder=6))
    ax.text(bx, by + 1.8 * h, "0", ha="center", fontsize=7, zorder=6)
    ax.text(bx + length, by + 1.8 * h, _length_label(length), ha="center", fontsize=7, zorder=6)
    # north arrow
    ax_w, ax_h = x1 - x0, y1 - y0
    ax.add_patch(FancyArrow(x0 + 0.04 * ax_w, y1 - 0.18 * ax_h, 0, 0.07 * ax_h, width=0.006 * ax_w,
                            head_width=0.025 * ax_w, head_length=0.035 * ax_h, color="black", zorder=6))
    ax.text(x0 + 0.04 * ax_w, y1 - 0.065 * ax_h, "北", ha="center", va="bottom", fontsize=11, weight="bold",
            zorder=6)
    fig.text(0.42, 0.955, text.mathtext(title), ha="center", va="center", fontsize=15, weight="bold")
    fig.text(0.42, 0.915, text.mathtext(subtitle), ha="center", va="center", fontsize=9, color="#333333")
    fig.text(0.96, 0.03, f"制图日期 {dt.date.today():%Y-%m-%d}  CGCS2000 高斯-克吕格投影", ha="right",
             fontsize=7, color="#555555")


def render_map(households: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, located: pd.DataFrame, out: str | Path, *,
               fmt: str | None = None, title: str = "客户分布地图", branches: gpd.GeoDataFrame | None = None,
               dpi: int = 150, per_grid_pages: bool = True, staff_names: Mapping[str, str] | None = None) -> Path:
    """Draw a printable map of grids and their households (A4 landscape).

    Parameters
    ----------
    households, grids : GeoDataFrame
        The households (located in ``grids``) and the grids of a staff territory, branch or one grid.
    located : DataFrame
        :func:`grids.coverage.locate_households` of ``households`` on ``grids``.
    out : path
        File to write.
    fmt : {'png', 'pdf'}, optional
        Default from ``out``'s suffix. A PDF has the whole territory on page 1 and, when it has several grids
        and ``per_grid_pages``, one page per grid after it.
    title : str
        Map title.
    branches : GeoDataFrame, optional
        Branches to mark.
    staff_names : mapping, optional
        Staff id → name, for the subtitle.
    dpi : int
        PNG resolution (A4 landscape at 150 dpi is 1753 × 1240 pixels).

    Raises
    ------
    FontMissingError
        No CJK font is installed.
    """
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in ("png", "pdf"):
        raise ValueError(f"fmt must be 'png' or 'pdf', not {fmt!r}")
    family = cjk_font()
    epsg = gk_crs_for(grids)
    g = grids.to_crs(epsg)
    hh = households.to_crs(epsg)
    br = branches.to_crs(epsg) if branches is not None and len(branches) else None
    status = household_status(hh)
    grid_of = located.reindex(hh.index)["grid_id"]
    rc: dict[RcKeyType, Any] = {"font.family": "sans-serif", "font.sans-serif": [family, "DejaVu Sans"],
                                "axes.unicode_minus": False, "pdf.fonttype": 42}

    def subtitle(grid_rows: gpd.GeoDataFrame, n: int) -> str:
        ids = sorted(grid_rows["staff_id"].dropna().astype(str).unique()) if "staff_id" in grid_rows else []
        staff = "、".join((staff_names or {}).get(i, i) for i in ids[:6]) + ("等" if len(ids) > 6 else "")
        return f"网格 {len(grid_rows)} 个，农户 {n} 户" + (f"，客户经理 {staff}" if staff else "")

    with matplotlib.rc_context(rc):
        pages = [(g, hh, status, title, len(g) <= 40)]
        if fmt == "pdf" and per_grid_pages and len(g) > 1:
            for row in range(len(g)):
                one = g.iloc[[row]]
                sel = (grid_of == one["grid_id"].iloc[0]).to_numpy()
                name = one["name"].iloc[0] if "name" in one and pd.notna(one["name"].iloc[0]) else one["code"].iloc[0]
                pages.append((one, hh[sel], status[sel], f"{title} · {name}", True))
        if fmt == "png":
            grid_rows, h, s, t, labels = pages[0]
            fig = Figure(figsize=(11.69, 8.27))  # no pyplot: no global figure state (safe in the app)
            _draw_page(fig, h, s, grid_rows, br, title=t, subtitle=subtitle(grid_rows, len(h)),
                       label_grids=labels)
            fig.savefig(out, dpi=dpi, format="png")
        else:
            with PdfPages(out) as pdf:
                for grid_rows, h, s, t, labels in pages:
                    fig = Figure(figsize=(11.69, 8.27))
                    _draw_page(fig, h, s, grid_rows, br, title=t, subtitle=subtitle(grid_rows, len(h)),
                               label_grids=labels)
                    pdf.savefig(fig)
    return out
