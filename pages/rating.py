"""集中授信 — one village's rating sitting: grades and limits for many households at once, checked against
the product rules (grids.credit_rules: entity type, band, 职务级别, guarantee; the branch's own rules where the
administrator set them), saved (audited); the 评定会 (panel of 5–7, votes, escalation above the branch's authority:
ui/rating_session.py, rules in grids/sessions.py), and the village's whitelist exported."""

from __future__ import annotations

import streamlit as st

from grids import credit, credit_rules, products
from grids.errors import GridsError
from grids.model import GUARANTEES, JOB_LEVELS
from grids.text import markdown
from ui import auth, data, rating_session
from ui.state import RATING_CHECK, RATING_FILES, RATING_VILLAGE

target, rev = data.current()
account = auth.current_account()
sw = data.scope_or_stop(target, rev, account)

st.title("集中授信")
if not account.can("rate"):
    st.info("你的角色不能评级。")
    st.stop()
hh = data.households(sw, purpose="集中授信")
admin = data.layer(target, rev, "admin_units", ("code", "name", "level"))
vill = data.villages(hh, admin)
vill = vill[vill["archived"] > 0]
if vill.empty:
    st.info("你的范围内还没有已建档的农户。")
    st.stop()
vname = dict(zip(vill["code"], vill["name"], strict=True))
names = {c: f"{vname[c]}（已建档 {n} 户）" for c, n in zip(vill["code"], vill["archived"], strict=True)}
if st.session_state[RATING_VILLAGE] not in names:
    st.session_state[RATING_VILLAGE] = vill["code"].iloc[0]
village = st.selectbox("村/嘎查/社区", list(names), format_func=names.get, key=RATING_VILLAGE)

table, seen, editor_key = data.editor_table(
    "rating", (village, data.unmasked()), lambda: data.rating_table(sw, hh, village, unmask=data.unmasked()),
    rev=rev)
grades = list(dict.fromkeys(g for p in products.load_catalogue() for g in products.grades(p)))
st.caption(f"直接评级：{len(table)} 户已建档农户。" + ("管理员可在此更正等级与额度（记入审计）；" if account.role == "admin" else
           "这里只能调低或取消授信、修改等级和担保方式；新增或调高授信须经下方评定会表决。")
           + "额度 0 表示不授信；“可选等级”是该户客户类型能评的等级；福薪卡按职务级别核定。只有改动过的行会被保存。")
with st.expander("产品规则" + (f"（网点 {account.branch_id}）" if account.branch_id else "（联社默认）")):
    rules = credit_rules.rules_summary(credit_rules.effective_rules(sw.ws, account.branch_id))
    st.dataframe(rules.rename(columns=credit_rules.RULES_HEADERS), hide_index=True, width="stretch")
edited = st.data_editor(
    table, key=editor_key, hide_index=True, height=420, width="stretch",
    disabled=[c for c in table.columns if c not in data.RATING_EDITABLE],
    column_order=["hh_id", "head_name", "product", "grade", "granted_amount", "guarantee", "job_level", "grades",
                  "segment", "id_no", "phone"], placeholder="—",
    column_config={
        "hh_id": "户号", "head_name": "户主", "id_no": "身份证号", "phone": "电话", "segment": "客户类型",
        "product": "产品", "grades": "可选等级",
        "grade": st.column_config.SelectboxColumn("等级", options=grades),
        "granted_amount": st.column_config.NumberColumn("授信额度（元）", min_value=0, step=1000, format="%d"),
        "guarantee": st.column_config.SelectboxColumn("担保方式", options=list(GUARANTEES)),
        "job_level": st.column_config.SelectboxColumn("职务级别", options=list(JOB_LEVELS)),
    },
)
changes = data.ratings_from_intents(data.table_intents(table, edited, id_column="hh_id",
                                                       blank_equal=("grade", "guarantee", "job_level")), table)
check_col, save_col, _ = st.columns([1, 1, 3])
if check_col.button("校验", width="stretch"):
    st.session_state[RATING_CHECK] = (village, len(changes), data.check_ratings(sw, changes))
if save_col.button("保存", type="primary", width="stretch", disabled=changes.empty, key="rating.save"):
    try:
        n = data.save_ratings(sw, changes, seen=seen)
    except GridsError as exc:
        st.error(markdown(str(exc)))
    else:
        data.drop_editor_table("rating")
        st.session_state[RATING_CHECK] = None
        st.toast(f"已保存 {n} 户的评级")
        st.rerun()
st.caption(f"已改动 {len(changes)} 户")
held = st.session_state[RATING_CHECK]
if held is not None and held[0] == village:
    _, n, problems = held
    if n == 0:
        st.info("还没有改动：在表格里填写等级、额度和担保方式后再校验。")
    elif len(problems):
        st.error(f"{len(problems)} 处问题（改动的 {n} 户中），保存前请修正：")
        st.dataframe(problems.rename(columns={"row": "行", "hh_id": "户号", "column": "列", "problem": "问题",
                                              "fix": "修正方法"}), hide_index=True, width="stretch")
    else:
        st.success(f"校验通过：改动的 {n} 户都符合产品规则。")

rating_session.render(sw, hh, village, vname[village], rev)

st.subheader("白名单")
white = credit.whitelist(hh, village, unmask=data.unmasked())
st.caption(f"已授信 {len(white)} 户，授信总额 {white['granted_amount'].sum() / 1e4:,.1f} 万元")
st.dataframe(white.rename(columns=credit.WHITELIST_HEADERS), hide_index=True, height=260, width="stretch")
name = vname[village]
x, c, _ = st.columns([1, 1, 3])
x.download_button("下载白名单（Excel）", sw.whitelist_file(village, fmt="xlsx"), f"白名单_{name}.xlsx",
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="rating.xlsx")
c.download_button("下载白名单（CSV）", sw.whitelist_file(village, fmt="csv"), f"白名单_{name}.csv", "text/csv",
                  key="rating.csv")
if data.unmasked():  # full ID numbers: a file exists only after this click, audited before it is made
    # a made file is offered on the next run only, then forgotten: Streamlit drops its /media copy a run later
    files = {k: v for k, v in st.session_state[RATING_FILES].items() if k[1] == rev}
    made = {fmt: files.pop((village, rev, fmt), None) for fmt in ("xlsx", "csv")}
    st.session_state[RATING_FILES] = files
    st.caption("上面的下载为脱敏版本。含明文身份证号和电话的白名单只在点击后生成并记入审计，"
               "生成后只提供这一次下载；再次需要时重新生成（再次记入审计）。")
    y, z, _ = st.columns([1, 1, 3])
    for col, fmt, label in ((y, "xlsx", "Excel"), (z, "csv", "CSV")):
        if made[fmt] is not None:
            col.download_button(f"下载明文白名单（{label}）", made[fmt], f"白名单_{name}_明文.{fmt}",
                                key=f"rating.unmasked_{fmt}", type="primary")
        elif col.button(f"生成含明文身份证号的白名单（{label}）", key=f"rating.make_unmasked_{fmt}"):
            try:
                files[(village, rev, fmt)] = data.whitelist_file(sw, village, fmt=fmt)
            except GridsError as exc:
                st.error(str(exc))
            else:
                st.rerun()
