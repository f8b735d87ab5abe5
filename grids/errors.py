"""The small error hierarchy of the library.

Every message says what is wrong *and* how to fix it; where the problem sits in a file it names the file,
row and column. Pages catch only these types and show them with ``st.error``.
"""

from __future__ import annotations

from typing import Any


class GridsError(Exception):
    """Base class of every error the library raises on purpose."""


class ValidationError(GridsError, ValueError):
    """Input data that cannot be used as it is (wrong CRS, missing column, bad code, ...)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.file, self.row, self.column, self.fix = file, row, column, fix
        where = []
        if file:
            where.append(f"文件 {file}")
        if row is not None:
            where.append(f"第 {row} 行")
        if column:
            where.append(f"列 “{column}”")
        text = ("，".join(where) + "：" if where else "") + message
        if fix:
            text += f"。修正方法：{fix}"
        super().__init__(text)


class WorkspaceError(GridsError):
    """The workspace file is missing, not a GeoPackage of ours, or damaged."""


class StaleRevisionError(GridsError):
    """A save was made against an older revision than the one stored; nothing was written."""

    def __init__(self, message: str, *, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(message)


class PermissionDeniedError(GridsError):
    """The signed-in account's role or scope does not allow this read or change."""


class StaleEditError(GridsError):
    """The rows an edit touches changed since the user read them; nothing was written."""

    MESSAGE = "数据已被他人修改，请刷新后重做"

    def __init__(self, message: str | None = None, *, ids: list[str] | None = None) -> None:
        self.ids = list(ids or [])
        text = message or self.MESSAGE
        if self.ids:
            text += f"（已变化：{'、'.join(self.ids[:5])}{' 等' if len(self.ids) > 5 else ''}）"
        super().__init__(text)


class AccountLockedError(PermissionDeniedError):
    """Too many failed sign-ins: the account is locked for a while (an administrator can unlock it)."""


class PublishConflictError(ValidationError):
    """Publishing a draft would overwrite assignments made on the published plan since the draft was made.

    ``conflicts`` lists them (``grid_id``, ``reason``, and the assignments at the fork, in the draft and live);
    nothing was written.
    """

    def __init__(self, message: str, *, conflicts: list[dict[str, Any]], fix: str | None = None) -> None:
        self.conflicts = list(conflicts)
        super().__init__(message, fix=fix)


class PublishBlockedError(ValidationError):
    """The plan has check errors: not published (the message counts them and names the first few)."""
