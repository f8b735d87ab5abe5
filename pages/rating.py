"""集中授信 — one village's rating sitting: grades and limits for many households at once, checked against
the product bands, saved (audited), and the village's whitelist exported."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from grids import credit, products
from grids.errors import GridsError
from grids.model import GUARANTEES
from grids.text import markdown
from ui import auth, data
from ui.state import RATING_CHECK, RATING_VILLAGE

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

table = credit.rating_list(hh, village, unmask=data.unmasked()).reset_index(drop=True)
table["granted_amount"] = pd.to_numeric(table["granted_amount"], errors="coerce").fillna(0.0)
table["guarantee"] = table["guarantee"].astype(object).where(table["guarantee"].notna(), "")
grades = sorted({g for p in products.load_catalogue() for g in products.grades(p)})
st.caption(f"评级小组对 {len(table)} 户已建档农户评定等级与额度（元）；额度 0 表示不授信。"
           "只有改动过的行会被保存。")
edited = st.data_editor(
    table, key=f"rating.editor.{village}.{rev}", hide_index=True, height=420, width="stretch",
    disabled=[c for c in table.columns if c not in data.RATING_EDITABLE],
    column_order=["hh_id", "head_name", "product", "grade", "granted_amount", "guarantee", "grades", "segment",
                  "id_no", "phone"], placeholder="—",
    column_config={
        "hh_id": "户号", "head_name": "户主", "id_no": "身份证号", "phone": "电话", "segment": "客户类型",
        "product": "产品", "grades": "可选等级",
        "grade": st.column_config.SelectboxColumn("等级", options=grades),
        "granted_amount": st.column_config.NumberColumn("授信额度（元）", min_value=0, step=1000, format="%d"),
        "guarantee": st.column_config.SelectboxColumn("担保方式", options=list(GUARANTEES)),
    },
)
changes = data.changed_ratings(table, edited)
check_col, save_col, _ = st.columns([1, 1, 3])
if check_col.button("校验", width="stretch"):
    st.session_state[RATING_CHECK] = (village, len(changes), data.check_ratings(sw, changes))
if save_col.button("保存", type="primary", width="stretch", disabled=changes.empty):
    try:
        n = data.save_ratings(sw, changes, expected_revision=rev)
    except GridsError as exc:
        st.error(markdown(str(exc)))
    else:
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
        st.success(f"校验通过：改动的 {n} 户都在产品额度范围内。")

st.subheader("白名单")
white = credit.whitelist(hh, village, unmask=data.unmasked())
st.caption(f"已授信 {len(white)} 户，授信总额 {white['granted_amount'].sum() / 1e4:,.1f} 万元")
shown = white.rename(columns={"hh_id": "户号", "head_name": "户主", "id_no": "身份证号", "phone": "电话",
                              "segment": "客户类型", "group_code": "组代码", "product": "产品", "grade": "等级",
                              "granted_amount": "授信额度（元）", "guarantee": "担保方式", "signed": "已签约"})
st.dataframe(shown, hide_index=True, height=260, width="stretch")
audit = {"on_click": data.audit_download, "args": (sw,), "kwargs": {"what": f"白名单 {village}", "rows": len(white)}
         } if data.unmasked() else {}
x, c, _ = st.columns([1, 1, 3])
x.download_button("下载白名单（Excel）", data.table_xlsx(shown, title="白名单"), f"白名单_{vname[village]}.xlsx",
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", **audit)
c.download_button("下载白名单（CSV）", data.table_csv(shown), f"白名单_{vname[village]}.csv", "text/csv", key="rating.csv",
                  **audit)
