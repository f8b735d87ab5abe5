"""Personal data: masking of ID numbers and phones (masked by default everywhere).

Examples
--------
>>> mask_id_no("150422199001011234")
'150422********1234'
>>> mask_phone("13812345678")
'138****5678'
>>> mask_name("张三丰")
'张**'
"""

from __future__ import annotations

from typing import TypeVar

import pandas as pd

FrameT = TypeVar("FrameT", bound=pd.DataFrame)
"""A DataFrame or a subclass (GeoDataFrame): the masks return what they are given."""


def _keep_ends(value: str | None, head: int, tail: int) -> str | None:
    """``value`` with all but its first ``head`` and last ``tail`` characters starred (all of it when short)."""
    if value is None or pd.isna(value):
        return value
    s = str(value)
    if len(s) <= head + tail:
        return "*" * len(s)
    return s[:head] + "*" * (len(s) - head - tail) + s[-tail:]


def mask_id_no(value: str | None) -> str | None:
    """Keep the 6-digit region code and the last 4 characters of an ID number."""
    return _keep_ends(value, 6, 4)


def mask_phone(value: str | None) -> str | None:
    """Keep the first 3 and last 4 digits of a phone number."""
    return _keep_ends(value, 3, 4)


def mask_name(value: str | None) -> str | None:
    """Keep the family name (first character) only; for logs and public screens."""
    if value is None or pd.isna(value):
        return value
    s = str(value)
    return s[:1] + "*" * (len(s) - 1)


def mask_frame(frame: FrameT) -> FrameT:
    """Return a copy of ``frame`` with ``id_no`` and ``phone`` masked (other columns untouched)."""
    out = frame.copy()
    if "id_no" in out:
        out["id_no"] = out["id_no"].map(mask_id_no)
    if "phone" in out:
        out["phone"] = out["phone"].map(mask_phone)
    return out


SURVEY_SENSITIVE_COLUMNS = ("annual_income", "liabilities", "liabilities_other_banks", "credit_consent")
"""Survey fields that are personal data like ID numbers: masked by default, shown in full only to roles with
``view_personal`` who ask (audited; :meth:`grids.scope.ScopedWorkspace.surveys`)."""
MASKED = "****"
"""What a masked survey value shows (a blank value stays blank)."""


def mask_survey_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` with the survey's income, liabilities and consent masked (:data:`MASKED`).

    Examples
    --------
    >>> df = pd.DataFrame({"hh_id": ["H1", "H2"], "annual_income": [80000.0, None], "credit_consent": [True, None]})
    >>> mask_survey_frame(df).values.tolist()
    [['H1', '****', '****'], ['H2', None, None]]
    """
    out = frame.copy()
    for col in SURVEY_SENSITIVE_COLUMNS:
        if col in out:
            values = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else MASKED
                      for v in out[col].astype(object)]
            out[col] = pd.Series(values, index=out.index, dtype=object)
    return out
