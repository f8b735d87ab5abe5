"""The hostile text corpus (``tests/data/hostile/names.txt``) for unit, AppTest and browser tests."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "data" / "hostile" / "names.txt"


def corpus() -> list[str]:
    """Every hostile string of the corpus (comments and blank lines skipped; a bare CR inside a line kept)."""
    text = CORPUS.read_bytes().decode("utf-8")
    return [line for line in text.split("\n") if line.strip() and not line.startswith("#")]
