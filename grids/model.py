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

SEGMENTS: tuple[str, ...] = ("普通农牧户", "家庭农牧场", "农牧业专业合作社", "个体工商户", "小微企业", "公职人员", "社区居民")
"""Entity types (客户类型) of households; ``农牧户`` of earlier versions reads as ``普通农牧户``
(:func:`grids.products.entity_type`)."""
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
GUARANTEES: tuple[str, ...] = ("", "公职人员保证", "商厅楼房抵押", "保证人", "房产抵押", "联保", "抵押")
"""Guarantee values (``""`` = 信用); 福薪卡 above 20万 needs 公职人员保证 or 商厅楼房抵押 (grids/data/products.json)."""
JOB_LEVELS: tuple[str, ...] = ("一般工作人员", "科级", "处级及以上")
"""职务级别 of 公职人员: the 福薪卡 band follows it."""
ROLES: tuple[str, ...] = ("admin", "leadership", "planner", "branch_manager", "customer_manager", "teller",
                          "credit_committee")
ROLE_NAMES = {
    "admin": "系统管理员",
    "leadership": "联社领导",
    "planner": "规划人员",
    "branch_manager": "网点主任",
    "customer_manager": "客户经理",
    "teller": "柜员",
    "credit_committee": "联社贷审会",
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


# -- surveys (农户信息采集, issue 15) -------------------------------------------------------------------------
SURVEY_OUTCOMES: tuple[str, ...] = (*VISIT_OUTCOMES, "不符合条件")
"""Outcomes of a survey: the visit outcomes plus 不符合条件 (which needs a reason)."""
CLOSED_OUTCOMES: tuple[str, ...] = ("已迁出", "不符合条件")
"""A household whose latest survey has one of these leaves the to-do list (:mod:`grids.survey`)."""
ENTITY_TYPES: tuple[str, ...] = ("普通农牧户", "家庭农牧场", "农牧业专业合作社", "个体工商户", "小微企业", "公职人员",
                                 "社区居民")
POST_LEVELS: tuple[str, ...] = ("一般工作人员", "科级", "处级及以上")
"""职务级别 of a 公职人员 (福薪卡 limits follow it)."""
INCOME_SOURCES: tuple[str, ...] = ("种植", "养殖", "种养结合", "务工", "经商", "工资", "其他")
HOUSING_KINDS: tuple[str, ...] = ("楼房", "砖瓦房", "土木房", "其他")
GUARANTEE_OPTIONS: tuple[str, ...] = ("信用", "保证人", "公职人员保证", "联保", "房产抵押", "商厅楼房抵押")
"""Guarantees a surveyed household can offer (several may be given, joined by ``、``)."""
SURVEY_LAYER = Layer(
    None,
    {
        "survey_id": "TEXT", "hh_id": "TEXT", "version": "INTEGER", "staff_id": "TEXT", "branch_id": "TEXT",
        "surveyed_at": "DATETIME", "recorded_at": "DATETIME", "recorded_by": "TEXT", "outcome": "TEXT",
        "reason": "TEXT",
        "members": "INTEGER", "labour": "INTEGER", "farmland_mu": "REAL", "grassland_mu": "REAL",
        "cattle": "INTEGER", "sheep": "INTEGER", "pigs": "INTEGER", "other_livestock": "INTEGER",
        "machinery": "TEXT", "machinery_value": "REAL", "housing": "TEXT", "housing_area": "REAL",
        "income_source": "TEXT", "annual_income": "REAL", "liabilities": "REAL", "liabilities_other_banks": "REAL",
        "need_amount": "REAL", "need_purpose": "TEXT", "need_product": "TEXT", "entity_type": "TEXT",
        "post_level": "TEXT", "salary_via_rcc": "BOOLEAN", "guarantee_options": "TEXT", "credit_consent": "BOOLEAN",
        "note": "TEXT",
    },
    key="survey_id",
    description="农户信息采集：每次保存一行（按户版本递增，最新版本有效）",
    indexes=("hh_id", "staff_id"),
)
"""Schema of the ``surveys`` layer (one row per save; see :mod:`grids.survey`)."""
# -- end of surveys -------------------------------------------------------------------------------------------


# -- rating sessions (集中授信, issue 15) ------------------------------------------------------------------------
PANEL_ROLES: tuple[str, ...] = ("村组干部", "村民代表", "信用社主任", "客户经理")
"""Roles of a 资信等级评定小组 member; a panel needs every one of them (:mod:`grids.sessions`)."""
VOTE_CHOICES: tuple[str, ...] = ("同意", "反对", "弃权")
DECISION_OUTCOMES: tuple[str, ...] = ("已授信", "待贷审会审批", "退回重评", "贷审会退回")
"""Outcome of a panel's decision on one household (:mod:`grids.sessions`)."""
RATING_SESSIONS_LAYER = Layer(
    None,
    {"session_id": "TEXT", "branch_id": "TEXT", "village_code": "TEXT", "held_on": "DATE", "place": "TEXT",
     "status": "TEXT", "created_by": "TEXT", "created_at": "DATETIME", "minutes": "TEXT"},
    key="session_id",
    description="集中授信评定会：一村（社区）一次，日期、地点、会议纪要",
    indexes=("branch_id", "village_code"),
)
RATING_PANEL_LAYER = Layer(
    None,
    {"session_id": "TEXT", "seq": "INTEGER", "name": "TEXT", "role": "TEXT", "present": "BOOLEAN"},
    description="资信等级评定小组成员（5–7 人：村组干部、村民代表、信用社主任、客户经理）",
    indexes=("session_id",),
)
RATING_DECISIONS_LAYER = Layer(
    None,
    {"decision_id": "TEXT", "session_id": "TEXT", "hh_id": "TEXT", "product": "TEXT", "grade": "TEXT",
     "amount": "REAL", "guarantee": "TEXT", "votes_for": "INTEGER", "votes_against": "INTEGER",
     "votes_abstain": "INTEGER", "votes": "TEXT", "outcome": "TEXT", "branch_id": "TEXT",
     "approval_limit": "REAL", "hh_version": "INTEGER", "reviewed_by": "TEXT", "reviewed_at": "DATETIME", "review_note": "TEXT"},
    key="decision_id",
    description="评定结果：每户一行（表决票数、结果；超过网点审批权限的待联社贷审会审批）",
    indexes=("session_id", "hh_id", "outcome"),
)
# -- end of rating sessions -----------------------------------------------------------------------------------


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
        {"branch_id": "TEXT", "name": "TEXT", "kind": "TEXT", "town_code": "TEXT", "address": "TEXT",
         "quota_per_day": "INTEGER"},
        key="branch_id",
        description="营业网点",
    ),
    "staff": Layer(
        None,
        {"staff_id": "TEXT", "name": "TEXT", "branch_id": "TEXT", "role": "TEXT", "phone": "TEXT",
         "quota_per_day": "INTEGER", "status": "TEXT", "left_at": "DATETIME"},
        key="staff_id",
        description="员工（客户经理、网点主任；已离职的保留记录，不再分配网格）",
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
            # product rules (issue 15, rules): 职务级别 and 代发 of 公职人员; a historical grant imported with
            # --legacy that breaks the rules is kept and flagged, with the rules it breaks
            "job_level": "TEXT",
            "payroll": "BOOLEAN",
            "credit_legacy": "BOOLEAN",
            "credit_note": "TEXT",
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
    "surveys": SURVEY_LAYER,
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
    "plan_forks": Layer(
        None,
        {
            "plan_id": "TEXT",
            "grid_id": "TEXT",
            "live_plan_id": "TEXT",
            "live_grid_id": "TEXT",
            "shape": "TEXT",
            "branch_id": "TEXT",
            "staff_id": "TEXT",
            "locked": "BOOLEAN",
            "forked_at": "DATETIME",
        },
        description="草稿方案建立时已发布方案的分配快照（发布时据此并入期间的改派）",
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
    # product rules (issue 15, rules): per-branch approval authority and overrides of the 联社's defaults
    "credit_rules": Layer(
        None,
        {"rule_id": "TEXT", "branch_id": "TEXT", "product": "TEXT", "grade": "TEXT", "approval_limit": "REAL",
         "min_amount": "REAL", "max_amount": "REAL", "base_rate": "REAL", "updated_at": "DATETIME",
         "actor": "TEXT"},
        key="rule_id",
        description="产品规则（网点）：网点审批权限，及对联社默认额度范围、基准利率的收紧（只能收紧，不能放宽）",
        indexes=("branch_id",),
    ),
    # monthly report (issue 16): the 联社's loan balances by month, branch and product (separate from the card
    # balances of the funnel), and every monthly report issued (the file itself, base64, so that both backends
    # keep it in the same transaction as its audit row)
    "loan_totals": Layer(
        None,
        {"loan_id": "TEXT", "month": "TEXT", "branch_id": "TEXT", "product": "TEXT", "balance": "REAL"},
        key="loan_id",
        description="贷款余额（按月份、网点、产品；元）",
        indexes=("month", "branch_id"),
    ),
    "reports": Layer(
        None,
        {"report_id": "TEXT", "month": "TEXT", "format": "TEXT", "scope": "TEXT", "created_at": "DATETIME",
         "created_by": "TEXT", "sha256": "TEXT", "size": "INTEGER", "content": "TEXT"},
        key="report_id",
        description="已生成的月度报告（文件内容以 base64 保存）",
        indexes=("month",),
    ),
    # 签约发卡 and 用信 (issue 15): the events behind households' signed / available_amount / balance
    "credit_events": Layer(
        None,
        {"event_id": "TEXT", "seq": "INTEGER", "hh_id": "TEXT", "kind": "TEXT", "amount": "REAL", "branch_id": "TEXT",
         "card_hash": "TEXT", "card_last4": "TEXT", "occurred_at": "DATETIME", "recorded_by": "TEXT",
         "recorded_at": "DATETIME"},
        key="event_id",
        description="签约与用信流水：开户余额（期初）、签约、用信、还款；卡号只存密钥哈希与后四位",
        indexes=("hh_id", "card_hash"),
    ),
    "rating_sessions": RATING_SESSIONS_LAYER,
    "rating_panel": RATING_PANEL_LAYER,
    "rating_decisions": RATING_DECISIONS_LAYER,
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
