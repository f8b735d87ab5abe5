"""Progress that means something (issue 16): the as-of date, quotas per person (own, else branch, else default),
the 7 and 30 days to the as-of date; branch managers set quotas of their own staff only."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids import progress
from grids.auth import Account
from grids.errors import PermissionDeniedError, ValidationError
from grids.plans import save_draft
from grids.scope import ScopedWorkspace

STAFF = pd.DataFrame({"staff_id": ["S1", "S2", "S3", "M1"], "name": ["甲", "乙", "丙", "主任"],
                      "branch_id": ["B1", "B1", "B2", "B1"], "role": ["客户经理", "客户经理", "客户经理", "网点主任"]})


def visits(rows):
    return pd.DataFrame(rows, columns=["hh_id", "staff_id", "visited_on"]).assign(
        visited_on=lambda v: pd.to_datetime(v["visited_on"]))


def test_as_of_date_and_live():
    assert progress.as_of_date({"as_of": "2019-09-30"}) == pd.Timestamp("2019-09-30")
    assert progress.is_live({}) and not progress.is_live({"as_of": "2019-09-30"})
    assert progress.as_of_date({"as_of": ""}) == progress.today()


def test_quota_is_own_else_branch_else_default():
    staff = STAFF.assign(quota_per_day=[15, None, None, None])
    branches = pd.DataFrame({"branch_id": ["B1", "B2"], "quota_per_day": [10, None]})
    q = progress.quotas(staff, branches)
    assert q.to_dict() == {"S1": 15.0, "S2": 10.0, "S3": float(progress.DEFAULT_QUOTA_PER_DAY), "M1": 10.0}


def test_windows_count_distinct_household_days_up_to_the_as_of_date_only():
    v = visits([("a", "S1", "2019-09-30"), ("a", "S1", "2019-09-30"),  # the same household twice a day: once
                ("b", "S1", "2019-09-24"), ("c", "S1", "2019-09-23"),  # the 23rd is outside the 7 days
                ("d", "S1", "2019-10-01"),  # after the as-of date: not counted
                ("e", "S2", "2019-09-05")])
    week = progress.staff_progress(v, STAFF, as_of=pd.Timestamp("2019-09-30"), days=7).set_index("staff_id")
    month = progress.staff_progress(v, STAFF, as_of=pd.Timestamp("2019-09-30"), days=30).set_index("staff_id")
    assert "M1" not in week.index  # only customer managers have a quota
    assert (week.loc["S1", "visits"], week.loc["S1", "visit_days"]) == (2, 2)
    assert (month.loc["S1", "visits"], month.loc["S2", "visits"]) == (3, 1)
    assert week.loc["S1", "target"] == pytest.approx(12 * 5)
    assert month.loc["S1", "target"] == pytest.approx(round(12 * 5 * 30 / 7, 1))
    assert set(week["status"]) == {"落后"}
    ahead = visits([(f"h{i}", "S3", f"2019-09-{24 + i % 7}") for i in range(70)])  # 10 a day, 7 days
    p = progress.staff_progress(ahead, STAFF.assign(quota_per_day=[None, None, 2, None]),
                                as_of=pd.Timestamp("2019-09-30"), days=7).set_index("staff_id")
    assert p.loc["S3", "status"] == "达标" and p.loc["S3", "target"] == 10


def test_set_as_of_is_audited_and_refuses_the_future(empty_ws):
    progress.set_as_of(empty_ws, "2019-09-30", actor="admin")
    assert progress.as_of_date(empty_ws.meta) == pd.Timestamp("2019-09-30")
    with pytest.raises(ValidationError, match="未来"):
        progress.set_as_of(empty_ws, progress.today() + pd.Timedelta(days=3), actor="admin")
    progress.set_as_of(empty_ws, None, actor="admin")
    assert progress.is_live(empty_ws.meta)


@pytest.fixture
def ws(any_ws):
    branches = gpd.GeoDataFrame({"branch_id": ["B1", "B2"], "name": ["一社", "二社"]},
                                geometry=[shapely.Point(119.05, 43.05), shapely.Point(119.15, 43.05)], crs=4490)
    with any_ws.transaction(actor="t", action="测试数据") as tx:
        tx.replace("staff", STAFF)
        tx.replace("branches", branches)
    grids = gpd.GeoDataFrame({"code": ["G1", "G2"], "kind": "rural", "branch_id": ["B1", "B2"],
                              "staff_id": ["S1", "S3"]},
                             geometry=[shapely.box(119, 43, 119.1, 43.1), shapely.box(119.1, 43, 119.2, 43.1)],
                             crs=4490)
    save_draft(any_ws, grids, name="main")  # a plan (scope needs one); no admin units to check a publication
    return any_ws


def test_a_branch_manager_sets_quotas_of_their_own_staff_only(ws):
    b1 = ScopedWorkspace(ws, Account("b1", "branch_manager", "一社主任", branch_id="B1"))
    rev = ws.revision
    b1.set_quotas({"S1": 14, "S2": ""}, branch_default=10)
    assert ws.revision > rev
    staff = ws.read("staff").set_index("staff_id")
    assert staff.loc["S1", "quota_per_day"] == 14 and pd.isna(staff.loc["S2", "quota_per_day"])
    q = progress.quotas(ws.read("staff"), ws.read("branches"))
    assert (q["S1"], q["S2"], q["S3"]) == (14.0, 10.0, float(progress.DEFAULT_QUOTA_PER_DAY))
    head = ws.audit_head()
    with pytest.raises(PermissionDeniedError):
        b1.set_quotas({"S3": 20})  # another branch's manager
    with pytest.raises(ValidationError):
        b1.set_quotas({"S1": 500})
    with pytest.raises(ValidationError):
        b1.set_quotas({"S9": 12})
    assert ws.read("staff").set_index("staff_id").loc["S3", "quota_per_day"] is None or \
        pd.isna(ws.read("staff").set_index("staff_id").loc["S3", "quota_per_day"])
    assert ws.audit_head() != head  # refusals are audited
    s1 = ScopedWorkspace(ws, Account("s1", "customer_manager", "甲", branch_id="B1", staff_id="S1"))
    with pytest.raises(PermissionDeniedError):
        s1.set_quotas({"S1": 30})
