"""Command line: ``python -m grids COMMAND …`` (``python -m grids --help`` lists the commands).

Each command lives in ``grids/commands/<name>.py`` with ``add_parser(subparsers)`` and ``run(args) -> int``;
only the command being run is imported.

Exit codes, the same for every command: 0 done; 1 done, but something was refused or found (rows rejected,
``check`` problems, a publish refused, a broken audit chain); 2 could not run (usage, unreadable input, no
permission, a workspace that cannot be read or written) — one line on stderr, no traceback; 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sqlite3
import sys
import warnings

from grids.errors import GridsError
from grids.text import plain

COMMANDS = ("init", "status", "demo", "import", "build", "check", "assign", "report", "export", "bench", "migrate",
            "accounts", "audit", "publish", "staff", "credit")

EXIT_OK, EXIT_FOUND, EXIT_CANNOT_RUN, EXIT_INTERRUPTED = 0, 1, 2, 130

THIRD_PARTY_MODULES = r"(numpy|pandas|dask|distributed|shapely|geopandas|pyogrio|pyproj|scipy|matplotlib|openpyxl|" \
                      r"networkx|sklearn|pyarrow|fiona|folium|branca|psycopg)(\..*)?$"
"""Modules whose warnings (numpy's RuntimeWarning inside dask/pandas/shapely internals, deprecations…) are kept from
the command line's output. Filtered by module only: a warning raised in our own code (``grids``, ``geodata``)
still shows, so a bug of ours is never hidden."""


def quiet_third_party_warnings() -> None:
    """Ignore warnings attributed to :data:`THIRD_PARTY_MODULES` (never a blanket filter).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     quiet_third_party_warnings()
    ...     warnings.warn_explicit("x", RuntimeWarning, "core.py", 1, module="dask.array.core")
    ...     warnings.warn_explicit("y", RuntimeWarning, "assign.py", 1, module="grids.assign")
    >>> [str(w.message) for w in seen]
    ['y']
    """
    warnings.filterwarnings("ignore", module=THIRD_PARTY_MODULES)

_OS_ERRORS = {
    errno.ENOENT: "文件或目录不存在",
    errno.EACCES: "没有读写权限",
    errno.EPERM: "没有读写权限",
    errno.EROFS: "文件系统是只读的",
    errno.ENOSPC: "磁盘已满",
    errno.EDQUOT: "磁盘配额已用完",
    errno.EISDIR: "这是一个目录，不是文件",
    errno.EIO: "读写设备出错",
}
_SQLITE_ERRORS = (
    ("readonly", "工作区文件是只读的", "换到可写的位置，或检查文件和所在目录的写权限"),
    ("full", "磁盘已满", "腾出磁盘空间后重试（未完成的写入已回滚）"),
    ("malformed", "工作区文件已损坏", "用备份恢复；或用 sqlite3 的 .recover 导出后重建"),
    ("not a database", "这不是工作区文件（GeoPackage）", "检查路径，或用 `python -m grids demo` 新建"),
    ("unable to open", "无法打开工作区文件", "检查路径是否存在、目录是否可写"),
    ("locked", "工作区正被其他程序占用", "稍后重试，或关闭正在写入该文件的程序"),
)


def os_error_text(exc: OSError) -> str:
    """One Chinese line for a file-system error: what failed, on which file, and how to fix it.

    Examples
    --------
    >>> os_error_text(OSError(errno.ENOSPC, "No space left on device", "ws.gpkg"))
    '无法读写 ws.gpkg：磁盘已满。修正方法：检查路径、权限和磁盘空间后重试'
    """
    what = _OS_ERRORS.get(exc.errno or 0) or plain(exc.strerror or exc, limit=200)
    where = f" {plain(exc.filename, limit=200)}" if exc.filename else ""
    return f"无法读写{where}：{what}。修正方法：检查路径、权限和磁盘空间后重试"


def sqlite_error_text(exc: sqlite3.Error) -> str:
    """One Chinese line for an SQLite error (read-only, full disk, corrupt or foreign file, locked).

    Examples
    --------
    >>> sqlite_error_text(sqlite3.OperationalError("attempt to write a readonly database"))
    '工作区文件是只读的（attempt to write a readonly database）。修正方法：换到可写的位置，或检查文件和所在目录的写权限'
    """
    detail = plain(exc, limit=200)
    for key, what, fix in _SQLITE_ERRORS:
        if key in detail.lower():
            return f"{what}（{detail}）。修正方法：{fix}"
    return f"工作区数据库出错（{detail}）。修正方法：检查文件是否完整、磁盘空间和写权限，必要时用备份恢复"


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run one command; returns the process exit code.

    Only the named command's module is imported (they pull in geopandas, scipy, dask…); ``--help`` or an
    unknown command imports them all to list them. Usage errors leave through argparse (``SystemExit(2)``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_third_party_warnings()
    parser = argparse.ArgumentParser(
        prog="python -m grids", description="网格通命令行 / 网格通 command line",
        epilog="写入工作区的命令和 --unmask 需要 --user 账号（密码取自环境变量 GRIDS_PASSWORD 或提示输入）。"
               "退出码：0 完成；1 完成但有被拒绝或发现的问题；2 无法执行（用法、输入、权限、工作区读写）。")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    named = next((a for a in argv if not a.startswith("-")), None)
    for name in (named,) if named in COMMANDS else COMMANDS:
        try:
            module = importlib.import_module(f"grids.commands.{name.replace('import', 'import_')}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("grids.commands"):
                continue  # command not built yet
            raise
        module.add_parser(sub)
        modules[name] = module
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].run(args) or 0)
    except GridsError as exc:
        message = f"错误：{exc}"
    except sqlite3.Error as exc:
        message = f"错误：{sqlite_error_text(exc)}"
    except OSError as exc:
        message = f"错误：{os_error_text(exc)}"
    except KeyboardInterrupt:
        print("已中断：进行中的写入已回滚，工作区保持中断前的样子", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if type(exc).__module__.split(".")[0] != "psycopg":
            raise  # a bug: the traceback is what a maintainer needs
        message = (f"错误：PostgreSQL 工作区出错（{plain(' '.join(str(exc).split()), limit=200)}）。"
                   "修正方法：检查数据库服务、磁盘空间和账号权限后重试（未完成的写入已回滚）")
    print(message, file=sys.stderr)
    return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
