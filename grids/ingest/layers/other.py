"""Loan totals (:func:`grids.loans.check_rows`) and the layers taken as they are (streets, urban areas)."""

from __future__ import annotations

import pandas as pd

from grids import loans
from grids.ingest.context import Context, Problems
from grids.ingest.schema import ObjectArray
from grids.ingest.values import text_column


def check_loan_totals(data: pd.DataFrame, geoms: ObjectArray, problems: Problems, ctx: Context) -> pd.DataFrame:
    """Loan totals: :func:`grids.loans.check_rows`."""
    return loans.check_rows(data, problems, ctx)


def check_plain(data: pd.DataFrame, geoms: ObjectArray, problems: Problems, ctx: Context) -> pd.DataFrame:
    """Streets and urban areas: every recognised column as text."""
    return pd.DataFrame({c: text_column(data, c) for c in data.columns}, index=data.index)
