"""The README lists the demo accounts that the demo workspace really has."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_names_the_demo_accounts_of_the_demo_workspace(demo_path):
    from grids.auth import DEMO_PASSWORD, list_accounts
    from grids.workspace import open_workspace

    text = README.read_text()
    accounts = list_accounts(open_workspace(demo_path))
    assert f"`{DEMO_PASSWORD}`" in text
    for role, prefix in (("branch_manager", "b"), ("customer_manager", "s"), ("teller", "t")):
        names = sorted(accounts.loc[accounts["role"] == role, "username"].astype(str))
        row = re.search(rf"\| `({prefix}\d+)` … `({prefix}\d+)` \|", text)
        assert row, f"README has no row for the {role} accounts"
        assert (row.group(1), row.group(2)) == (names[0], names[-1])
    for fixed in ("admin", "leader", "planner", "cc01"):
        assert f"| `{fixed}` |" in text and fixed in set(accounts["username"])
