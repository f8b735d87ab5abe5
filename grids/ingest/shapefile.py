"""Shapefile sidecars: the .dbf encoding when there is no .cpg, and geometry/attribute record counts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from grids.errors import ValidationError


def dbf_encoding(shp: Path) -> str | None:
    """``GBK`` when the ``.dbf`` next to ``shp`` holds text that is not UTF-8 but is GBK, else ``None``."""
    dbf = next((p for p in (shp.with_suffix(".dbf"), shp.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return None
    with dbf.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            return None
        header_len = int.from_bytes(head[8:10], "little")
        record_len = max(int.from_bytes(head[10:12], "little"), 1)
        fields = fh.read(max(header_len - 32, 0))
        body = fh.read(record_len * 20_000)
    chunks = [fields[i:i + 11].split(b"\x00")[0] for i in range(0, len(fields) - 1, 32)]
    chunks += [body[i:i + record_len] for i in range(0, len(body), record_len)]
    chunks = [c for c in chunks if any(b > 0x7F for b in c)]
    if not chunks:
        return None

    def decodes(enc: str) -> bool:
        try:
            for c in chunks:
                c.decode(enc)
        except UnicodeDecodeError:
            return False
        return True

    if decodes("utf-8"):
        return None
    for enc in ("GBK", "GB18030"):
        if decodes(enc.lower()):
            return enc
    return None


def _sidecar(shp: Path, suffix: str) -> Path | None:
    """The file next to ``shp`` with ``suffix`` in either case, or ``None``."""
    return next((p for p in (shp.with_suffix(suffix.lower()), shp.with_suffix(suffix.upper())) if p.exists()), None)


def shapefile_counts(shp: str | os.PathLike[str]) -> tuple[int, int | None]:
    """Records in a Shapefile's ``.shp`` (geometries) and ``.dbf`` (attribute rows; ``None`` without one).

    The ``.shp`` is walked record by record (its own headers, not the ``.shx`` index), and only complete
    records count; the ``.dbf`` count is the smaller of the header's count and the records the file holds.

    Raises
    ------
    ValidationError
        The ``.shp`` is not a Shapefile (bad header).
    """
    shp = Path(shp)
    size = shp.stat().st_size
    with shp.open("rb") as fh:
        head = fh.read(100)
        if len(head) < 100 or int.from_bytes(head[0:4], "big") != 9994:
            raise ValidationError("不是有效的 Shapefile（.shp 文件头不对）", file=shp.name,
                                  fix="文件可能已损坏或被截断；重新导出完整的 Shapefile，或改用 GeoPackage")
        n = _shx_count(shp, size)
        if n is None:  # no usable index: walk the records
            n, pos = 0, 100
            while pos + 8 <= size:
                fh.seek(pos)
                length = int.from_bytes(fh.read(8)[4:8], "big", signed=True) * 2
                if length < 0 or pos + 8 + length > size:
                    break
                n += 1
                pos += 8 + length
    dbf = _sidecar(shp, ".dbf")
    if dbf is None:
        return n, None
    with dbf.open("rb") as fh:
        head = fh.read(12)
    if len(head) < 12:
        return n, 0
    declared = int.from_bytes(head[4:8], "little")
    header_len, record_len = int.from_bytes(head[8:10], "little"), int.from_bytes(head[10:12], "little")
    held = (dbf.stat().st_size - header_len) // record_len if record_len else 0
    return n, max(0, min(declared, held))


def _shx_count(shp: Path, size: int) -> int | None:
    """Records of ``shp`` per its ``.shx`` index when the index chains the ``.shp`` exactly, else ``None``."""
    shx = _sidecar(shp, ".shx")
    if shx is None or (shx.stat().st_size - 100) % 8:
        return None
    entries = np.fromfile(shx, dtype=">i4", offset=100).reshape(-1, 2).astype(np.int64) * 2
    if not len(entries):
        return 0 if size <= 100 else None
    ends = entries[:, 0] + 8 + entries[:, 1]
    chained = entries[0, 0] == 100 and bool(np.all(entries[1:, 0] == ends[:-1])) and (entries[:, 1] >= 0).all()
    return len(entries) if chained and ends[-1] == size else None


def check_shapefile(shp: Path) -> None:
    """Refuse a Shapefile whose geometries and attribute rows do not pair up (rows would be lost or mismatched)."""
    n_shp, n_dbf = shapefile_counts(shp)
    if n_dbf is not None and n_shp != n_dbf:
        raise ValidationError(
            f"Shapefile 的几何文件（.shp）有 {n_shp} 条记录，属性表（.dbf）有 {n_dbf} 条，两者不一致；"
            "照此导入会丢失或错配数据，未导入", file=shp.name,
            fix="这几个文件可能不是同一次导出的，或其中一个被截断；在 GIS 软件中重新导出完整的 Shapefile"
                "（.shp、.shx、.dbf、.prj 一起上传），或改用 GeoPackage")
