"""The command line entry (``python -m grids``): commands are listed and only the one run is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grids.__main__ import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_names_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "nope" in err and "report" in err


def test_a_command_imports_only_its_own_module():
    code = ("import sys\nfrom grids.__main__ import main\n"
            "try:\n    main(['check', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('grids.commands.')))\n"
            "print('dask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=120).stdout.splitlines()
    assert out[-2] == "['grids.commands.check']"
    assert out[-1] == "False"
