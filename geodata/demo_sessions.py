"""The demo's rating sessions (集中授信评定会): the panels and votes behind the demo's existing grants.

One session per village with granted households, held after the village's survey campaign, under the branch whose
grids hold the village in the plan. Its panel has 5–7 members with plausible names: the branch's 网点主任 as
信用社主任, a customer manager of the branch, 1–2 村组干部 and 2–3 村民代表 (now and then one of them absent).
Each granted household has one decision matching its grant exactly (product, grade, amount, guarantee), votes
mostly 同意 and always carried; grants above the branch's approval authority were escalated and approved by
``cc01``. A few households that are 符合条件 but not granted (not in the funnel's granted count) get a decision
still waiting for the credit committee (待贷审会审批), at amounts above the authority that follow the product rules.
Households are not changed: the funnel stays exactly the 联社's.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from geodata.names import person_names
from grids import credit_rules, sessions

PENDING_TARGET = 15
"""Escalations left waiting for the credit committee in the demo."""
_VOTE_P = (0.95, 0.02, 0.03)  # 同意, 反对, 弃权 of one member on one household


def add_sessions(ws: Any, plan_id: str, *, seed: int = 1504, actor: str = "demo") -> dict[str, int]:
    """Write the demo's sessions, panels and decisions into ``ws`` in one transaction (see the module docstring).

    Returns
    -------
    dict
        ``sessions``, ``decisions``, ``escalated_approved`` and ``pending`` counts.
    """
    from grids import plans
    from grids.coverage import locate_in_workspace

    rng = np.random.default_rng(seed + 15)
    cols = ["hh_id", "village_code", "group_code", "segment", "archived", "eligible", "product", "grade",
            "granted_amount", "guarantee", "job_level", "version"]
    hh = pd.DataFrame(ws.read("households", columns=[c for c in cols if c in ws.columns("households")]))
    located = locate_in_workspace(ws, plans.read_grids(ws, plan_id), households=hh)
    hh["branch_id"] = located["branch_id"].to_numpy(dtype=object)
    hh["staff_id"] = located["staff_id"].to_numpy(dtype=object)
    amount = pd.to_numeric(hh["granted_amount"], errors="coerce").fillna(0.0)
    granted = hh[amount > 0].copy()
    village_branch = hh.dropna(subset=["branch_id"]).groupby("village_code")["branch_id"].agg(
        lambda s: s.mode().iloc[0])
    staff = pd.DataFrame(ws.read("staff", columns=["staff_id", "name", "branch_id", "role"]))
    head = staff[staff["role"] == "网点主任"].drop_duplicates("branch_id").set_index("branch_id")["name"]
    names = staff.set_index("staff_id")["name"]
    managers = staff[staff["role"] == "客户经理"].groupby("branch_id")["staff_id"].first()
    visits = pd.DataFrame(ws.read("visits", columns=["hh_id", "visited_on"]))
    visited = visits.merge(hh[["hh_id", "village_code"]], on="hh_id").groupby("village_code")["visited_on"].max()
    as_of = pd.Timestamp(ws.meta.get("as_of") or pd.Timestamp.now().normalize())

    manager_of = hh.dropna(subset=["staff_id"]).groupby("village_code")["staff_id"].agg(
        lambda s: s.mode().iloc[0]).to_dict()
    villages = sorted(v for v in granted["village_code"].dropna().unique() if v in village_branch.index)
    if not villages:  # a county without grants (or without a plan's grids over them): no sessions
        return {"sessions": 0, "decisions": 0, "escalated_approved": 0, "pending": 0}
    pending = _pending(hh, amount, rng, village_branch)
    session_rows, panel_rows, members_of = [], [], {}
    for k, code in enumerate(villages):
        branch = village_branch[code]
        sid = f"RS-{code}"
        day = min(pd.Timestamp(visited.get(code, as_of)).normalize() + pd.Timedelta(days=int(rng.integers(3, 15))),
                  as_of)
        cm_id = manager_of.get(code) or managers.get(branch)
        n_cadres, n_reps = int(rng.integers(1, 3)), int(rng.integers(2, 4))
        locals_ = list(person_names(rng, n_cadres + n_reps))
        members = ([(locals_[i], "村组干部") for i in range(n_cadres)]
                   + [(locals_[n_cadres + i], "村民代表") for i in range(n_reps)]
                   + [(str(head.get(branch, "主任")), "信用社主任"), (str(names.get(cm_id, "客户经理")), "客户经理")])
        members = _unique(members)
        present = [True] * len(members)
        if len(members) == 7 and rng.random() < 0.3:
            present[1] = False  # one 村组干部 or 村民代表 away
        for seq, ((name, role), here) in enumerate(zip(members, present, strict=True), start=1):
            panel_rows.append({"session_id": sid, "seq": seq, "name": name, "role": role, "present": here})
        members_of[code] = [m for (m, _), here in zip(members, present, strict=True) if here]
        session_rows.append({"session_id": sid, "branch_id": branch, "village_code": code, "held_on": day,
                             "place": "村委会" if k % 5 else "嘎查委员会", "status": "已评定", "created_by": actor,
                             "created_at": day, "minutes": ""})
        del k
    sess = pd.DataFrame(session_rows)
    decided = pd.concat([granted.assign(outcome=sessions.GRANTED),
                         pending.assign(outcome=sessions.PENDING)], ignore_index=True)
    decided = decided[decided["village_code"].isin(set(villages))].sort_values(["village_code", "hh_id"],
                                                                                kind="stable")
    decided["session_id"] = "RS-" + decided["village_code"].astype(str)
    decided["seq"] = decided.groupby("village_code").cumcount() + 1
    decided["decision_id"] = decided["session_id"] + "-" + decided["seq"].map("{:04d}".format)
    rules = {b: credit_rules.effective_rules(ws, b) for b in village_branch.unique()}
    decided["branch_id"] = decided["village_code"].map(village_branch)
    decided["approval_limit"] = [rules[b].approval_limit(p) for b, p in zip(decided["branch_id"], decided["product"],
                                                                             strict=True)]
    votes, tallies = _votes(rng, decided["village_code"].map(members_of).tolist())
    day_of = sess.set_index("session_id")["held_on"]
    over = (decided["outcome"] == sessions.GRANTED) & (decided["granted_amount"] > decided["approval_limit"])
    reviewed_at = decided["session_id"].map(day_of) + pd.to_timedelta(rng.integers(5, 20, len(decided)), unit="D")
    dec = pd.DataFrame({
        "decision_id": decided["decision_id"], "session_id": decided["session_id"], "hh_id": decided["hh_id"],
        "product": decided["product"], "grade": decided["grade"], "amount": decided["granted_amount"].astype(float),
        "guarantee": decided["guarantee"], "votes_for": tallies[:, 0], "votes_against": tallies[:, 1],
        "votes_abstain": tallies[:, 2], "votes": votes, "outcome": decided["outcome"],
        "branch_id": decided["branch_id"], "approval_limit": decided["approval_limit"].astype(float),
        "hh_version": pd.to_numeric(decided.get("version", pd.Series(0, index=decided.index)),
                                    errors="coerce").fillna(0).astype(int),
        "reviewed_by": np.where(over, "cc01", np.array(None)),
        "reviewed_at": reviewed_at.where(over.to_numpy(), pd.NaT).clip(  # type: ignore[call-overload]
            upper=as_of + pd.Timedelta(days=30)),  # (pandas-stubs: clip takes no Timestamp bound)
        "review_note": np.where(over, "同意", np.array(None))})
    panel = pd.DataFrame(panel_rows)
    panels = dict(tuple(panel.groupby("session_id")))
    at_session = dec[["session_id", "outcome", "amount"]].assign(  # what the panel decided that day
        outcome=np.where(over.to_numpy(), sessions.PENDING, dec["outcome"].to_numpy()))
    decs = dict(tuple(at_session.groupby("session_id")))
    sess["minutes"] = [sessions.minutes_text(held_on=d, place=p, panel=panels[s], decisions=decs[s])
                       for s, d, p in zip(sess["session_id"], sess["held_on"], sess["place"], strict=True)]
    existing = set(ws.layers())
    with ws.transaction(actor=actor, action="演示：集中授信评定会") as tx:
        for layer, frame in ((sessions.SESSIONS_LAYER, sess), (sessions.PANEL_LAYER, panel),
                             (sessions.DECISIONS_LAYER, dec)):
            (tx.replace if layer in existing else tx.append)(layer, frame)
    return {"sessions": len(sess), "decisions": len(dec), "escalated_approved": int(over.sum()),
            "pending": int((dec["outcome"] == sessions.PENDING).sum())}


def _unique(members: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Members with distinct names (a repeated name gets its role in brackets)."""
    seen: set[str] = set()
    out = []
    for name, role in members:
        if name in seen:
            name = f"{name}（{role}）"
        seen.add(name)
        out.append((name, role))
    return out


def _votes(rng: np.random.Generator, panels: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """Votes (JSON) and ``(同意, 反对, 弃权)`` per decision: mostly 同意, always a majority of those present."""
    out, tallies = [], np.zeros((len(panels), 3), dtype=int)
    choice = rng.choice(3, size=(len(panels), 7), p=_VOTE_P)
    width = np.array([len(m) for m in panels])
    unanimous = (np.where(np.arange(7) < width[:, None], choice, 0) == 0).all(axis=1)
    cache: dict[int, str] = {}
    for i, members in enumerate(panels):
        if unanimous[i]:  # most: one text per panel
            key = id(members)
            if key not in cache:
                cache[key] = json.dumps(dict.fromkeys(members, "同意"), ensure_ascii=False)
            out.append(cache[key])
            tallies[i] = (len(members), 0, 0)
            continue
        picks = choice[i, :len(members)].copy()
        while (picks == 0).sum() * 2 <= len(members):
            picks[np.flatnonzero(picks != 0)[0]] = 0
        tallies[i] = np.bincount(picks, minlength=3)
        out.append(json.dumps({m: ("同意", "反对", "弃权")[p] for m, p in zip(members, picks, strict=True)},
                              ensure_ascii=False))
    return out, tallies


def _pending(hh: pd.DataFrame, amount: pd.Series, rng: np.random.Generator, village_branch: pd.Series
             ) -> pd.DataFrame:
    """Up to :data:`PENDING_TARGET` 符合条件 households not granted, rated above the authority within the rules."""
    eligible = hh["eligible"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    archived = hh["archived"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    pool = hh[eligible & archived & (amount.to_numpy() <= 0) & hh["village_code"].isin(village_branch.index)
              & hh["segment"].isin(["家庭农牧场", "农牧业专业合作社", "个体工商户", "小微企业", "社区居民"])]
    pool = pool.iloc[rng.permutation(len(pool))[:PENDING_TARGET]].copy()
    farm = pool["segment"].isin(["家庭农牧场", "农牧业专业合作社"])
    pool["product"] = np.where(farm, "福农卡", np.where(pool["segment"] == "社区居民", "福民卡", "福商卡"))
    pool["grade"] = np.where(farm, "黄金客户", "标准")
    pool["granted_amount"] = (rng.integers(32, 50, len(pool)) * 10000).astype(float)
    pool["guarantee"] = None
    ok = [not credit_rules.check_grant(entity_type=s, product=p, grade=g, amount=a)
          for s, p, g, a in zip(pool["segment"], pool["product"], pool["grade"], pool["granted_amount"], strict=True)]
    return pool[ok]
