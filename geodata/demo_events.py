"""The demo county's credit events: opening events of every signed household, and some 用信/还款 at various branches.

The households' generated values (:mod:`geodata.demo`) become opening events (:func:`grids.credit_events.opening_events`:
a 签约 of the signed line on a demo card, a 开户余额 of the balance); then :data:`PAIRS` customers each draw at one
branch and repay the same amount at another (授用分离), so the county funnel stays exactly the 联社's figures while
the event history shows drawdowns and repayments across the branches.

Demo card numbers are a function of the household id (:func:`demo_card_number`), so a demo user or test can find a
customer by card; a real workspace's cards are only ever stored hashed.

Examples
--------
>>> demo_card_number("1504221002010010001")[:4], len(demo_card_number("1504221002010010001"))
('6228', 19)
"""

from __future__ import annotations

import hashlib
from typing import cast

import numpy as np
import pandas as pd

from grids import credit_events as ce
from grids.workspace import Transaction

PAIRS = 120
"""Customers who draw and repay once each in the demo (net zero)."""
AT = "2019-09-30T08:00:00+08:00"
"""The demo's reporting date (its opening events are dated then)."""


def demo_card_number(hh_id: str) -> str:
    """The demo card number of household ``hh_id`` (19 digits, ``6228…``); demo only."""
    n = int.from_bytes(hashlib.sha256(f"demo-card:{hh_id}".encode()).digest()[:8], "big") % 10**15
    return f"6228{n:015d}"


def write_events(tx: Transaction, households: pd.DataFrame, branches: pd.DataFrame, *, seed: int, key: str) -> int:
    """Write the demo's credit events in ``tx`` (the demo's own transaction), the cards hashed under ``key`` (the
    card key, :mod:`grids.cardkey`); returns how many."""
    signed = households["signed"].astype(object).where(households["signed"].notna(), False).astype(bool)
    ids = households.loc[signed.to_numpy(), "hh_id"].astype(str)
    opening = ce.opening_events(households, at=AT, card_numbers={h: demo_card_number(h) for h in ids}, key=key)
    rng = np.random.default_rng(seed + 15)
    room = households.assign(free=pd.to_numeric(households["available_amount"], errors="coerce").fillna(0)
                             - pd.to_numeric(households["balance"], errors="coerce").fillna(0))
    room = room[signed.to_numpy() & (room["free"] >= 1000).to_numpy()]
    pick = room.iloc[rng.choice(len(room), min(PAIRS, len(room)), replace=False)] if len(room) else room
    bids = branches["branch_id"].astype(str).to_numpy()
    rows = []
    days = pd.Timestamp("2019-09-01T09:00:00+08:00") + pd.to_timedelta(rng.integers(0, 28 * 24 * 60, len(pick)), "m")
    for i, (r, day) in enumerate(zip(pick.itertuples(), days, strict=True)):
        free, hh_id = cast(float, r.free), cast(str, r.hh_id)  # pandas-stubs type itertuples' fields loosely
        amount = float(max(1000, np.floor(free * rng.uniform(0.1, 0.9) / 100) * 100))
        at, back = rng.choice(bids, 2, replace=len(bids) < 2)
        last4 = demo_card_number(hh_id)[-4:]
        for j, (kind, branch, when) in enumerate(((ce.DRAW, at, day), (ce.REPAY, back, day + pd.Timedelta(days=2)))):
            seq = 2 * i + j + 1
            rows.append({"event_id": f"E{seq:010d}", "seq": seq, "hh_id": r.hh_id, "kind": kind, "amount": amount,
                         "branch_id": str(branch), "card_hash": None, "card_last4": last4,
                         "occurred_at": when.isoformat(), "recorded_by": f"t{str(branch)[1:].lower()}",
                         "recorded_at": when.isoformat()})
    events = pd.concat([opening, pd.DataFrame(rows)], ignore_index=True)
    tx.append(ce.EVENTS_LAYER, events)
    return len(events)
