"""The command line's identity rule, one for every command.

Every command that writes, and every ``--unmask``, takes ``--user NAME``; the password comes from the
environment variable ``GRIDS_PASSWORD`` or a prompt (never an argument, which ``ps`` would show). The account
is checked like a sign-in (:func:`grids.auth.authenticate`: lockout, disabled accounts) and then must hold the
permission the command needs; the audit records its username. Read-only commands need no user. The exceptions
are ``demo`` (a new demo workspace) and creating the first administrator of a workspace that has none.

Which command needs what (:data:`grids.auth.PERMISSIONS`):

=================  =============================================
``import``         ``import``
``build``          ``edit_plans``
``assign``         ``edit_plans`` (a what-if, which writes nothing, needs no user)
``export``         none; with ``--unmask``: ``export`` and ``view_personal``
``report``         none; with ``--month`` (a monthly report, kept in the workspace): an account that reads the
                   county or a branch (``read_all`` or ``read_branch``), whose scope the report covers
``migrate``        ``manage_accounts`` on the source (an administrator: the copy carries every account and
                   every household in full)
``credit``         ``rate`` (``rate``), ``review_credit`` (``approve``, ``return``); ``queue`` any account (what it
                   lists is scoped: the committee all, a branch manager its own branch)
=================  =============================================
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Iterable

from grids.auth import Account, authenticate
from grids.errors import PermissionDeniedError
from grids.workspace import Workspace

PASSWORD_ENV = "GRIDS_PASSWORD"


def add_user_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, required: bool = True) -> None:
    """Add ``--user NAME`` (required for writing commands: argparse exits 2 without it)."""
    parser.add_argument("--user", required=required, metavar="NAME",
                        help=f"以该账号执行（密码取自环境变量 {PASSWORD_ENV} 或提示输入；记入审计）")


def read_password(*, env: str = PASSWORD_ENV, prompt: str = "密码：") -> str:
    """The password from ``env`` or, on a terminal, a prompt; PermissionDeniedError when neither is there."""
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin or not sys.stdin.isatty():
        raise PermissionDeniedError(f"没有密码：请设置环境变量 {env}，或在终端中运行以输入密码")
    return getpass.getpass(prompt)


def sign_in(ws: Workspace | None, username: str | None, *,
            permission: str | Iterable[str] | None = None) -> Account:
    """The account ``username`` after checking its password; it must hold ``permission`` (one or several).

    Raises PermissionDeniedError (exit code 2) when the user is missing, the password is wrong, the account is
    disabled or locked, or the role lacks a permission.

    Examples
    --------
    >>> sign_in(None, None, permission="import")
    Traceback (most recent call last):
    ...
    grids.errors.PermissionDeniedError: 此命令需要 --user 指定操作账号（密码取自环境变量 GRIDS_PASSWORD 或提示输入）
    """
    if not username:
        raise PermissionDeniedError(f"此命令需要 --user 指定操作账号（密码取自环境变量 {PASSWORD_ENV} 或提示输入）")
    assert ws is not None, "sign_in needs a workspace once a username is given"
    session = authenticate(ws, username, read_password())
    needed = (permission,) if isinstance(permission, str) else tuple(permission or ())
    for name in needed:
        session.account.require(name)
    return session.account
