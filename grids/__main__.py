"""Command line: ``python -m grids COMMAND …`` (``python -m grids --help`` lists the commands).

Each command lives in ``grids/commands/<name>.py`` with ``add_parser(subparsers)`` and ``run(args) -> int``;
only the command being run is imported.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from grids.errors import GridsError

COMMANDS = ("demo", "import", "build", "check", "assign", "report", "export", "bench", "migrate", "accounts",
            "audit")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run one command; returns the process exit code.

    Only the named command's module is imported (they pull in geopandas, scipy, dask…); ``--help`` or an
    unknown command imports them all to list them.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m grids", description="网格通命令行 / 网格通 command line")
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
        print(f"错误：{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
