"""The outcome of validating (and maybe importing) one file: :class:`ImportReport` and its rejects file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids.errors import ValidationError
from grids.ingest.datum import DatumCheck
from grids.ingest.schema import MODES
from grids.text import plain, spreadsheet_cell

REJECT_COLUMNS: tuple[str, ...] = ("文件", "行", "列", "原因", "修正方法")


@dataclass
class ImportReport:
    """Outcome of validating (and maybe importing) one file.

    Attributes
    ----------
    accepted : GeoDataFrame or DataFrame
        Rows that pass, typed to the layer's schema (EPSG:4490), index = row number in the file.
    rejects : DataFrame
        One line per problem: :data:`REJECT_COLUMNS` followed by the row's original values.
    warnings : list of str
        Things done on the user's behalf (encoding detected, CRS assumed, geometry repaired, columns ignored).
    name_issues : list of dict
        Village/group names that matched no unit (乡镇, 村, 登记名称, 候选), one per rejected row; see
        :meth:`names_template_csv`.
    unchanged : int
        Update mode: rows taken (counted in ``imported``) that changed nothing.
    """

    accepted: gpd.GeoDataFrame | pd.DataFrame
    rejects: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    source: str = ""
    layer: str = ""
    mode: str = "append"
    read: int = 0
    repaired: int = 0
    imported: int = 0
    written: bool = False
    strict: bool = False
    rejects_path: Path | None = None
    datum: DatumCheck | None = None
    coords_declared: bool = True
    name_issues: list[dict[str, str]] = field(default_factory=list)
    unchanged: int = 0

    def stop_before_writing(self, *, loses: str) -> bool:
        """Whether nothing is to be written: rejected rows under ``strict``, or no accepted row (a warning says so).

        Replace mode with rejected rows turns ``strict`` on first, with a warning naming what a partial replace
        would do (``loses``, e.g. “丢失现有数据”): replacing a layer with only the good rows would lose the rest.
        """
        if self.mode == "replace" and self.rejected and not self.strict:
            self.strict = True
            self.warnings.append(f"替换模式下有被拒绝的行：为免{loses}，未导入任何数据。"
                                 "修正拒收文件中的行后重新导入（或用 --mode append 追加）")
        if self.strict and self.rejected:
            return True
        if not len(self.accepted):
            self.warnings.append("没有可导入的行，未导入任何数据")
            return True
        return False

    @property
    def rejected(self) -> int:
        """Number of distinct rows rejected."""
        return int(self.rejects["行"].nunique()) if len(self.rejects) else 0

    def reasons(self) -> dict[str, int]:
        """Reason → number of rows rejected for it (a row with two problems counts under both)."""
        if not len(self.rejects):
            return {}
        counts = self.rejects.drop_duplicates(["行", "原因"])["原因"].value_counts(sort=True)
        return {str(k): int(v) for k, v in counts.items()}

    def summary(self) -> str:
        """One line in Chinese: how many rows were read, imported, repaired and rejected (by reason)."""
        head = f"{self.source} → {self.layer}（{MODES.get(self.mode, self.mode)}）：读取 {self.read} 行，"
        if self.written or not len(self.accepted):
            head += f"导入 {self.imported} 行"
            if self.unchanged:
                head += f"（其中 {self.unchanged} 行与工作区相同，未改动）"
        elif self.strict and self.rejected:
            head += "严格模式下有被拒绝的行，未导入任何数据"
        else:
            head += f"可导入 {len(self.accepted)} 行（未写入）"
        head += f"，修复 {self.repaired} 行，拒绝 {self.rejected} 行"
        reasons = self.reasons()
        if reasons:
            head += "（" + "；".join(f"{k} {v} 行" for k, v in reasons.items()) + "）"
        return head

    def rejects_csv(self) -> bytes:
        """:attr:`rejects` as CSV bytes, UTF-8 with BOM so that Excel opens it; every cell and header passes
        :func:`grids.text.spreadsheet_cell` (text starting like a formula, ``= + - @`` or after a line break,
        gets a leading ``'``; a bare CR becomes a line feed), so Excel/WPS evaluate nothing.

        The app's download button hands out exactly these bytes.
        """
        safe = self.rejects.astype(object).map(spreadsheet_cell)
        safe.columns = [spreadsheet_cell(str(c)) for c in safe.columns]
        return safe.to_csv(index=False).encode("utf-8-sig")

    def names_template_csv(self) -> bytes:
        """A name mapping to fill in (CSV, UTF-8 with BOM): one line per distinct unknown or ambiguous name with
        its candidates; the user writes the right 行政区划代码 and imports it with ``--names`` (lines left
        without a code are ignored). Empty bytes when every name matched."""
        if not self.name_issues:
            return b""
        frame = pd.DataFrame(self.name_issues).drop_duplicates(["乡镇", "村", "登记名称"])
        frame.insert(3, "行政区划代码", "")
        if not frame["村"].astype(bool).any():
            frame = frame.drop(columns="村")
        safe = frame.astype(object).map(spreadsheet_cell)
        return safe.to_csv(index=False).encode("utf-8-sig")

    def write_rejects(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`rejects_csv` to ``path`` and remember it in :attr:`rejects_path`.

        Raises
        ------
        ValidationError
            The file cannot be written (no permission, disk full), naming it and the fix.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.rejects_csv())
        except OSError as exc:
            raise ValidationError(f"无法写出拒绝行文件 {plain(path.name, limit=120)}：{plain(exc.strerror or exc)}",
                                  file=self.source or None, fix="换一个可写的位置（--rejects 路径），或清理磁盘空间") from exc
        self.rejects_path = path
        return path

    def refuse_suspect_datum(self) -> None:
        """Stop the import when :attr:`datum` finds the coordinates suspect (GCJ-02 read as WGS84, or the
        reverse) and they were not declared, or ``strict`` is on: nothing is imported, and the fix names the
        ``--coords`` to import with.

        Raises
        ------
        ValidationError
            The datum is suspect (see above).
        """
        d = self.datum
        if d is None or not d.suspect or not (self.strict or not self.coords_declared):
            return
        if d.declared == "gcj02":
            fix = "确认坐标的来源：GPS 或天地图坐标用 --coords wgs84 重新导入；确是高德/腾讯坐标才用 --coords gcj02"
        else:
            fix = ("用 --coords gcj02 重新导入（坐标会纠偏到 CGCS2000）；如果确认是 GPS/天地图坐标，"
                   "用 --coords wgs84 明确声明后导入")
        raise ValidationError(f"{d.message()}。未导入任何数据", file=self.source or None, fix=fix)


def rejects_frame(items: list[tuple[int, str, str, str]], rows: np.ndarray, raw: pd.DataFrame,
                  geoms: np.ndarray | None, source: str) -> pd.DataFrame:
    """The rejects table: :data:`REJECT_COLUMNS`, then the row's original cells (and its WKT when ``geoms``)."""
    originals = [c if c not in REJECT_COLUMNS else f"{c}（原）" for c in raw.columns]
    cols = [*REJECT_COLUMNS, *originals] + (["几何（WKT）"] if geoms is not None else [])
    if not items:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    items = sorted(items, key=lambda t: t[0])
    pos = np.array([t[0] for t in items])
    out = pd.DataFrame({
        "文件": source,
        "行": rows[pos],
        "列": [t[1] for t in items],
        "原因": [t[2] for t in items],
        "修正方法": [t[3] for t in items],
    })
    values = raw.iloc[pos].reset_index(drop=True)
    values.columns = originals
    out = pd.concat([out, values], axis=1)
    if geoms is not None:
        out["几何（WKT）"] = [None if geoms[p] is None else shapely.to_wkt(geoms[p], rounding_precision=7)[:32000]
                          for p in pos]
    return out
