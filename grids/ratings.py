"""The rating editor of 集中授信: villages to rate, the editor's table, what an edited table asks to change
(:func:`table_intents`, for every data editor of the app), checks and saves through the scoped workspace.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from grids.scope import ScopedWorkspace

RATING_EDITABLE = ("grade", "granted_amount", "guarantee", "job_level")
"""Columns of the rating editor the user may change (the others are shown read-only)."""


def villages(households: pd.DataFrame, admin_units: pd.DataFrame) -> pd.DataFrame:
    """Villages of ``households`` with their names, household and archived (surveyed) counts."""
    code = households["village_code"].astype("string")
    archived = households["archived"].astype("boolean").fillna(False).astype(int)
    out = pd.DataFrame({"code": code, "archived": archived}).dropna(subset=["code"]).groupby("code").agg(
        households=("archived", "size"), archived=("archived", "sum")).reset_index()
    names = dict(zip(admin_units["code"], admin_units["name"], strict=True))
    out["name"] = out["code"].map(names).fillna(out["code"])
    return out.sort_values("code").reset_index(drop=True)


def changed_ratings(original: pd.DataFrame, edited: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``edited`` (a rating editor) whose grade, limit or guarantee differ from ``original``.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"hh_id": ["x", "y"], "grade": ["良好", None], "granted_amount": [50000.0, None],
    ...                   "guarantee": ["", None]})
    >>> b = a.assign(granted_amount=[50000.0, 40000.0], grade=["良好", "一般"])
    >>> changed_ratings(a, b)["hh_id"].tolist()
    ['y']
    """
    def norm(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=frame.index)
        out["grade"] = frame["grade"].astype(object).where(frame["grade"].notna(), "").astype(str).str.strip()
        out["guarantee"] = frame["guarantee"].astype(object).where(frame["guarantee"].notna(), "").astype(str)
        out["granted_amount"] = pd.to_numeric(frame["granted_amount"], errors="coerce").fillna(0.0)
        return out

    a, b = norm(original), norm(edited.reindex(original.index))
    diff = (a != b).any(axis=1).to_numpy()
    return edited.reindex(original.index)[diff]


def _same(a: Any, b: Any) -> bool:
    na = a is None or (not isinstance(a, str | list | tuple) and pd.isna(a))
    nb = b is None or (not isinstance(b, str | list | tuple) and pd.isna(b))
    if na or nb:
        return na and nb
    a = a.item() if hasattr(a, "item") else a
    b = b.item() if hasattr(b, "item") else b
    return bool(a == b)


def table_intents(shown: pd.DataFrame, edited: pd.DataFrame, *, id_column: str,
                  blank_equal: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """What a data editor asks to change, keyed by the ids of the rows the *server* showed.

    ``shown`` is the table as this session rendered it (kept server-side, default RangeIndex); ``edited`` is
    what the editor returned. A row is identified by its position label in ``shown`` — never by the id column
    the client sends back — so every changed cell, read-only or not, becomes ``{id: {column: value}}`` for
    the library to decide. Rows the client added or deleted, or an edited index, become intents the library
    refuses (an unknown id, a read-only field ``删除``). Columns in ``blank_equal`` treat None and ``""`` alike.

    Examples
    --------
    >>> shown = pd.DataFrame({"grid_id": ["G1", "G2"], "staff_id": ["S1", "S2"]})
    >>> table_intents(shown, shown.assign(staff_id=["S1", "S3"], grid_id=["G1", "G9"]), id_column="grid_id")
    {'G2': {'grid_id': 'G9', 'staff_id': 'S3'}}
    >>> table_intents(shown, shown.iloc[[1]], id_column="grid_id")
    {'G1': {'删除': True}}
    """
    ids = dict(zip(range(len(shown)), shown[id_column].astype(str), strict=True))
    out: dict[str, dict[str, Any]] = {}
    labels = list(edited.index)
    before = shown.to_dict("records")  # plain rows: one lookup per cell (``iloc`` per cell cost 0.1 s a run)
    after = dict(zip(labels, edited.to_dict("records"), strict=True))
    for pos, gid in ids.items():
        if pos not in after:
            out[gid] = {"删除": True}
            continue
        row = after[pos]
        diff = {}
        for col in edited.columns:
            old = before[pos].get(col)
            new = row[col]
            if col in blank_equal:
                old, new = (None if _same(old, "") else old), (None if _same(new, "") else new)
            if not _same(old, new):
                diff[col] = new.item() if hasattr(new, "item") else new
        if diff:
            out[gid] = diff
    for n, label in enumerate(lb for lb in labels if lb not in ids):
        out[f"（新增行 {n + 1}）"] = {c: (v.item() if hasattr(v, "item") else v) for c, v in after[label].items()}
    return out



def rating_table(sw: ScopedWorkspace, households: pd.DataFrame, village: str, *, unmask: bool) -> pd.DataFrame:
    """The rating editor's table of one village (:func:`grids.credit.rating_list`) with each household's
    ``version`` (``hh_id`` first)."""
    from grids import credit

    table = credit.rating_list(households, village, unmask=unmask).reset_index(drop=True)
    table["granted_amount"] = pd.to_numeric(table["granted_amount"], errors="coerce").fillna(0.0)
    table["guarantee"] = table["guarantee"].astype(object).where(table["guarantee"].notna(), "")
    versions = sw.household_versions()
    table["version"] = [versions.get(str(h), 0) for h in table["hh_id"]]
    return table


def ratings_from_intents(intents: dict[str, dict[str, Any]], shown: pd.DataFrame) -> pd.DataFrame:
    """A rating batch (one row per household, ``hh_id`` + the changed columns, unchanged rating fields filled
    from ``shown``) from :func:`table_intents` of the rating editor; other columns stay in, to be refused."""
    from grids.credit import RATING_FIELDS

    base = shown.set_index(shown["hh_id"].astype(str))
    rows = []
    for hh_id, fields in intents.items():
        rec: dict[str, Any] = {"hh_id": hh_id}
        if hh_id in base.index:
            rec.update({c: base.at[hh_id, c] for c in RATING_FIELDS})
        # a changed id column is a change of a read-only field of *this* row, never another household
        rec.update({("hh_id（改）" if c == "hh_id" else c): v for c, v in fields.items()})
        rows.append(rec)
    out = pd.DataFrame(rows)
    return out.reindex(columns=list(dict.fromkeys(["hh_id", *RATING_FIELDS, *out.columns])))


def check_ratings(sw: ScopedWorkspace, ratings: pd.DataFrame) -> pd.DataFrame:
    """The problems of a rating batch (product bands, guarantees, households outside the scope)."""
    from grids import credit, credit_rules

    rules = credit_rules.effective_rules(sw.ws, sw.account.branch_id)  # the branch's, as the save applies them
    _, problems = credit.record_ratings(sw.households(), ratings, rules=rules)
    return problems


def save_ratings(sw: ScopedWorkspace, ratings: pd.DataFrame, *, seen: dict[str, int] | None = None,
                 expected_revision: int | None = None) -> int:
    """Send a rating batch to the library (:meth:`ScopedWorkspace.save_ratings`); returns the count saved.

    ``seen`` are the household versions the user saw (the page passes them); without it, the versions read now
    (``expected_revision`` is accepted for older callers and not used: staleness is judged per household).
    """
    del expected_revision
    return sw.save_ratings(ratings, seen=sw.household_versions() if seen is None else seen)



def session_suggestions(sw: ScopedWorkspace, table: pd.DataFrame, *, unmask: bool) -> pd.DataFrame:
    """The scorecard's suggested grade and amount for the households of ``table`` (``hh_id``, ``product``), under
    the rules of the account's branch (:func:`grids.scorecard.village_suggestions`)."""
    from grids import credit_rules, scorecard

    rules = credit_rules.effective_rules(sw.ws, sw.account.branch_id)
    products = dict(zip(table["hh_id"].astype(str), table["product"], strict=True))
    return scorecard.village_suggestions(sw.ws, list(products), products, rules=rules, unmask=unmask)


def session_table(sw: ScopedWorkspace, households: pd.DataFrame, village: str, members: list[str], *,
                  unmask: bool) -> pd.DataFrame:
    """The 评定会's vote table of ``village`` (:func:`grids.sessions.vote_table`: one vote column per present
    member, the scorecard's suggestions) with each household's ``version`` (what the panel saw)."""
    from grids import sessions

    listed = rating_table(sw, households, village, unmask=False)
    table = sessions.vote_table(listed, members, session_suggestions(sw, listed, unmask=unmask))
    versions = dict(zip(listed["hh_id"].astype(str), listed["version"], strict=True))
    return table.assign(version=[versions.get(str(h), 0) for h in table["hh_id"]])
