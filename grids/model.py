"""Layer schemas, codes and enums of a workspace.

A workspace is one GeoPackage; each entry of :data:`LAYERS` is one table in it. Geometry is stored in
:data:`STORAGE_CRS` (CGCS2000 geographic). Columns not listed here may be added by importers and are kept.

Statistical codes (国家统计用区划代码): county 6 digits (``150422``), town 9 (``150422100``), village 12
(``150422100201``); a villager group appends 3 digits (``150422100201015``). Urban 街道 are towns and 社区
are villages in that scheme.

Where a cooperative has no village boundaries, villages are derived from their seats (layer ``seats``, the
村委会 positions): such units have ``derived`` true, and a village without a statistical code gets a
provisional one (``provisional_code`` true, town code + ``9xx``). ``households.placed_by`` says how a household
was placed: ``point`` (its own GPS point), ``code`` (village/group code) or ``name`` (village/group name matched
through ``name_aliases``); ``households.group_name`` keeps the 组 as a register named it (``'1组'``) while its
village has no group units yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STORAGE_CRS = "EPSG:4490"
STORAGE_EPSG = 4490

SEGMENTS: tuple[str, ...] = ("农牧户", "个体工商户", "小微企业", "公职人员", "社区居民")
PRODUCTS: tuple[str, ...] = ("福农卡", "福商卡", "福薪卡", "福民卡")
LEVELS: tuple[str, ...] = ("county", "town", "village", "group")
LEVEL_NAMES = {"county": "旗县", "town": "镇/乡/苏木/街道", "village": "村/嘎查/社区", "group": "组"}
CODE_LENGTH = {"county": 6, "town": 9, "village": 12, "group": 15}
GRID_KINDS: tuple[str, ...] = ("rural", "urban")
GRID_KIND_NAMES = {"rural": "农牧区", "urban": "城区"}
PLAN_STATUSES: tuple[str, ...] = ("draft", "published", "archived")
PLAN_STATUS_NAMES = {"draft": "草稿", "published": "已发布", "archived": "已归档"}
VISIT_OUTCOMES: tuple[str, ...] = ("已建档", "补充资料", "未遇", "拒绝", "已迁出")
BRANCH_KINDS: tuple[str, ...] = ("营业部", "信用社", "分社")
STAFF_ROLES: tuple[str, ...] = ("客户经理", "网点主任")
STAFF_STATUSES: tuple[str, ...] = ("active", "left")
STAFF_STATUS_NAMES = {"active": "在职", "left": "已离职"}
STAFF_LEFT = "left"
"""``staff.status`` of a leaver: kept (visits keep the id), never assignable again (NULL counts as active)."""
GUARANTEES: tuple[str, ...] = ("", "保证人", "房产抵押")
ROLES: tuple[str, ...] = ("admin", "leadership", "planner", "branch_manager", "customer_manager")
ROLE_NAMES = {
    "admin": "系统管理员",
    "leadership": "联社领导",
    "planner": "规划人员",
    "branch_manager": "网点主任",
    "customer_manager": "客户经理",
}


@dataclass(frozen=True)
class Layer:
    """Schema of one workspace table.

    Parameters
    ----------
    geometry : str or None
        GeoPackage geometry type name (``POINT``, ``MULTILINESTRING``, ``MULTIPOLYGON``) or ``None`` for an
        attribute-only table.
    columns : dict
        Column name → GeoPackage column type (``TEXT``, ``INTEGER``, ``REAL``, ``BOOLEAN``, ``DATE``,
        ``DATETIME``), in display order.
    key : str or None
        Column that identifies a row; unique when given.
    """

    geometry: str | None
    columns: dict[str, str]
    key: str | None = None
    description: str = ""
    indexes: tuple[str, ...] = field(default_factory=tuple)


LAYERS: dict[str, Layer] = {
    "admin_units": Layer(
        "MULTIPOLYGON",
        {"code": "TEXT", "name": "TEXT", "level": "TEXT", "kind": "TEXT", "parent_code": "TEXT",
         "derived": "BOOLEAN", "provisional_code": "BOOLEAN"},
        key="code",
        description="行政区划：旗县、镇/乡/苏木/街道、村/嘎查/社区、组",
        indexes=("level", "parent_code"),
    ),
    "urban_areas": Layer(
        "MULTIPOLYGON", {"name": "TEXT", "code": "TEXT"}, description="城区范围"
    ),
    "streets": Layer(
        "MULTILINESTRING", {"name": "TEXT", "class": "TEXT"}, description="街道与道路"
    ),
    "branches": Layer(
        "POINT",
        {"branch_id": "TEXT", "name": "TEXT", "kind": "TEXT", "town_code": "TEXT", "address": "TEXT"},
        key="branch_id",
        description="营业网点",
    ),
    "staff": Layer(
        None,
        {"staff_id": "TEXT", "name": "TEXT", "branch_id": "TEXT", "role": "TEXT", "phone": "TEXT",
         "status": "TEXT", "left_at": "DATETIME"},
        key="staff_id",
        description="员工（客户经理、网点主任）；status 为 left 的已离职（保留记录，不再分配网格）",
        indexes=("branch_id",),
    ),
    "households": Layer(
        "POINT",
        {
            "hh_id": "TEXT",
            "head_name": "TEXT",
            "id_no": "TEXT",
            "phone": "TEXT",
            "segment": "TEXT",
            "village_code": "TEXT",
            "group_code": "TEXT",
            "address": "TEXT",
            "archived": "BOOLEAN",
            "eligible": "BOOLEAN",
            "product": "TEXT",
            "grade": "TEXT",
            "granted_amount": "REAL",
            "signed": "BOOLEAN",
            "available_amount": "REAL",
            "using": "BOOLEAN",
            "balance": "REAL",
            "guarantee": "TEXT",
            "placed_by": "TEXT",
            "group_name": "TEXT",
            "version": "INTEGER",
        },
        key="hh_id",
        description="农户与客户（建档与授信信息）",
        indexes=("village_code", "group_code"),
    ),
    "seats": Layer(
        "POINT",
        {"code": "TEXT", "name": "TEXT", "level": "TEXT", "town_code": "TEXT", "source": "TEXT"},
        key="code",
        description="驻地：村委会/嘎查/社区居委会的位置（推算村界的依据）",
        indexes=("town_code",),
    ),
    "name_aliases": Layer(
        None,
        {"level": "TEXT", "parent_code": "TEXT", "alias": "TEXT", "code": "TEXT", "confirmed_at": "DATETIME",
         "actor": "TEXT"},
        description="名称别名：登记表里的村名/组名写法 → 行政区划代码（导入时确认一次，以后自动采用）",
        indexes=("level", "parent_code", "alias"),
    ),
    "visits": Layer(
        None,
        {"hh_id": "TEXT", "staff_id": "TEXT", "visited_on": "DATE", "outcome": "TEXT", "note": "TEXT"},
        description="走访记录",
        indexes=("hh_id", "staff_id"),
    ),
    "plans": Layer(
        None,
        {
            "plan_id": "TEXT",
            "name": "TEXT",
            "status": "TEXT",
            "revision": "INTEGER",
            "parent_plan_id": "TEXT",
            "params": "TEXT",
            "created_at": "DATETIME",
            "updated_at": "DATETIME",
            "published_at": "DATETIME",
        },
        key="plan_id",
        description="网格方案（草稿/已发布）",
    ),
    "grids": Layer(
        "MULTIPOLYGON",
        {
            "grid_id": "TEXT",
            "plan_id": "TEXT",
            "code": "TEXT",
            "name": "TEXT",
            "kind": "TEXT",
            "town_code": "TEXT",
            "source_codes": "TEXT",
            "households": "INTEGER",
            "branch_id": "TEXT",
            "staff_id": "TEXT",
            "locked": "BOOLEAN",
            "version": "INTEGER",
        },
        key="grid_id",
        description="网格",
        indexes=("plan_id",),
    ),
    "accounts": Layer(
        None,
        {
            "username": "TEXT",
            "display_name": "TEXT",
            "role": "TEXT",
            "branch_id": "TEXT",
            "staff_id": "TEXT",
            "password_hash": "TEXT",
            "active": "BOOLEAN",
            "created_at": "DATETIME",
            "failed_logins": "INTEGER",
            "locked_until": "DATETIME",
        },
        key="username",
        description="账号（密码以 argon2 哈希保存）",
    ),
    "login_failures": Layer(
        None,
        {"username": "TEXT", "failed_logins": "INTEGER", "locked_until": "DATETIME", "last_failed": "DATETIME"},
        key="username",
        description="不存在的用户名的登录失败计数（与真实账号一样锁定，避免借锁定探测用户名）",
    ),
    "audit": Layer(
        None,
        {
            "at": "DATETIME",
            "actor": "TEXT",
            "action": "TEXT",
            "layer": "TEXT",
            "revision": "INTEGER",
            "detail": "TEXT",
            "prev_hash": "TEXT",
            "hash": "TEXT",
        },
        description="操作审计",
    ),
}
