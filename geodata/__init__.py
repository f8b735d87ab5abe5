"""Sample data and the demo-county generator of 网格通.

``geodata.demo`` builds the synthetic county (:func:`geodata.demo.generate`, :func:`geodata.demo.write_demo`);
``geodata/outlines/`` holds real county outlines (see its README for provenance).

Examples
--------
>>> sorted(available())
['chifeng_counties_gcj02']
>>> get_path("chifeng_counties_gcj02").name
'chifeng_counties_gcj02.geojson'
"""

from __future__ import annotations

from pathlib import Path

from grids.errors import ValidationError

OUTLINES = Path(__file__).resolve().parent / "outlines"


def available() -> list[str]:
    """Names of the bundled outline files (without extension)."""
    return sorted(p.stem for p in OUTLINES.glob("*.geojson"))


def get_path(name: str) -> Path:
    """Path of a bundled outline file by name; the error lists the available names."""
    path = OUTLINES / f"{name}.geojson"
    if not path.is_file():
        raise ValidationError(f"没有名为 “{name}” 的样例数据", fix=f"可用：{'、'.join(available())}")
    return path
