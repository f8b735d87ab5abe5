"""Reading user files into a workspace layer, with a per-row validation report and a rejects file.

Three steps, each usable on its own (the app's data page previews with the first two):

1. :func:`read_table` (:mod:`grids.ingest.read`) reads a GeoPackage, Shapefile (``.cpg`` honoured, GBK
   detected), GeoJSON, KML, CSV or XLSX into an :class:`IngestResult`: a GeoDataFrame in EPSG:4490 whose
   attributes are kept as text exactly as the user typed them, index (named ``row``) the row number the user
   sees (header = row 1 in CSV/XLSX, feature number in spatial files), with the warnings and row problems
   found while reading. Coordinates are converted from the declared datum (``coords``,
   :mod:`grids.ingest.datum`); problems that concern the whole file raise :class:`~grids.errors.ValidationError`
   naming the file and the fix.
2. :func:`validate` (:mod:`grids.ingest.validation`) recognises the columns for a workspace layer
   (:mod:`grids.ingest.columns`: Chinese register headers such as 户号, 身份证号, 村代码 …), checks every row
   (:mod:`grids.ingest.layers`) and returns an :class:`ImportReport`: the accepted rows typed to the layer's
   schema, the rejected ones with file, row, column, reason and fix, and warnings.
3. :func:`import_file` (:mod:`grids.ingest.write`) does both and writes the accepted rows in ONE workspace
   transaction (audit action ``导入``), so a failure leaves the workspace as it was. ``strict=True`` writes
   nothing when any row is rejected.

Modes: ``households`` and ``visits`` are appended by default (village registers arrive village by village;
an id already in the workspace is rejected); every other layer is replaced by default (reference data comes
as a whole). Either can be forced with ``mode=``; ``mode='update'`` changes existing households by 户号
(only the cells the file fills; audited before/after, versions bumped; :mod:`grids.ingest.update`).

Registers keyed by names: households and visits may name the village (村/嘎查/社区) and group (组) instead
of giving codes (:data:`~grids.ingest.columns.NAME_COLUMNS`); :mod:`grids.names` matches them within the town
of a 乡镇 column (or ``town=``). Unknown and ambiguous names are rejected with the closest candidates; names
confirmed once (``names=`` mapping file, layer ``name_aliases``) are used by every later import, and a rejects
file can be imported again as it is.

Examples
--------
>>> recognise_columns(["户号", "户主姓名", "身份证号码", "备注"], "households")
{'户号': 'hh_id', '户主姓名': 'head_name', '身份证号码': 'id_no'}
"""

from __future__ import annotations

from grids.ingest.columns import recognise_columns
from grids.ingest.datum import DatumCheck, detect_gcj02
from grids.ingest.read import IngestResult, read_source, read_table, source_digests
from grids.ingest.report import REJECT_COLUMNS, ImportReport
from grids.ingest.schema import COORDS, IMPORTABLE_LAYERS, MODES, ROW_INDEX
from grids.ingest.shapefile import shapefile_counts
from grids.ingest.validation import validate
from grids.ingest.write import check_file, import_file

__all__ = [
    "COORDS",
    "IMPORTABLE_LAYERS",
    "MODES",
    "REJECT_COLUMNS",
    "ROW_INDEX",
    "DatumCheck",
    "ImportReport",
    "IngestResult",
    "check_file",
    "detect_gcj02",
    "import_file",
    "read_source",
    "read_table",
    "recognise_columns",
    "shapefile_counts",
    "source_digests",
    "validate",
]
