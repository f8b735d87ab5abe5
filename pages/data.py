"""数据管理 — workspace info, layer counts, import with the validation report, the audit trail."""

from __future__ import annotations

import tempfile

import pandas as pd
import streamlit as st

from grids import ingest, placement, text
from grids.errors import GridsError
from grids.model import LAYERS
from grids.text import markdown
from ui import auth, data, fmt
from ui.state import DATA_IMPORT_COORDS, DATA_IMPORT_DONE, DATA_IMPORT_LAYER

target, rev = data.current()
account = auth.current_account()
info = data.workspace_info(target, rev)
meta = info["meta"]

st.title("数据管理")
c1, c2, c3, c4 = st.columns(4)
c1.metric("旗县", markdown(meta.get("county_name", "")))
c2.metric("工作区版本", rev)
c3.metric("文件大小", f"{info['size_mb']:.1f} MB" if info["size_mb"] is not None else "—")
c4.metric("数据来源", "演示数据" if meta.get("demo") == "1" else "本行数据")
st.caption("工作区：" + text.markdown(text.mask_url(target)))  # a PostGIS URL's password never shows

counts = pd.DataFrame(
    [(name, LAYERS[name].description if name in LAYERS else "", n) for name, n in info["counts"].items()],
    columns=["图层", "说明", "行数"],
)
st.subheader("图层")
st.dataframe(counts, hide_index=True, height=35 * (len(counts) + 1) + 3)

status = data.onboarding(target, rev)  # the onboarding checklist: python -m grids status
st.subheader("开通进度")
st.dataframe(pd.DataFrame([(s["title"], s["state_name"], s["detail"], s["blocks"], s["next"]) for s in status["steps"]],
                          columns=["步骤", "状态", "现有", "缺少时影响", "补齐方法"]), hide_index=True)
# the next step is a command: shown as code (literal, nothing in it is Markdown)
st.caption("各步都已完成。" if status["ready"] else "下一步：`" + str(status["next"]).replace("`", "'") + "`")


def show_report(report) -> None:
    """The validation report: summary, warnings, rejected rows (downloadable). File names, sheet and column
    names in these texts come from the user's file: shown as literal text, never as Markdown."""
    (st.success if report.rejected == 0 else st.warning)(text.markdown(report.summary()))
    for w in report.warnings:
        st.caption("· " + text.markdown(w))
    if len(report.rejects):
        st.dataframe(report.rejects, hide_index=True, height=260)
        # the library's bytes: every cell passed through grids.text.spreadsheet_cell (no live formula)
        st.download_button("下载被拒绝的行（CSV）", report.rejects_csv(), f"rejects_{report.layer}.csv", "text/csv")
    template = report.names_template_csv()
    if template:
        st.caption(f"{len(report.name_issues)} 行的村名/组名无法识别或有歧义：下载名称对照表，按“候选”填写行政区划代码，"
                   "在上面“名称对照表”中选择它，再导入被拒绝的行。")
        st.download_button("下载名称对照表（待填写）", template, f"names_{report.layer}.csv", "text/csv")


def rederive(target: str) -> tuple[object | None, str | None]:
    """After a households import, villages derived from their seats take in the households just located (as
    ``python -m grids import … households`` does): ``(result, None)`` or ``(None, error text)``."""
    try:
        return placement.rederive_after_households(data.open_workspace(target), account=account), None
    except GridsError as exc:
        return None, str(exc)


def show_rederived(result, error: str | None) -> None:
    """The re-derivation's report, the same as the command line's."""
    if error:
        st.error("重新推算村界失败：" + text.markdown(error))
    if result is None:
        return
    st.info(text.markdown(placement.rederive_message(result)))
    for w in result.warnings:
        st.caption("· " + text.markdown(w))
    if len(result.beyond):
        st.dataframe(result.beyond.rename(columns={"hh_id": "户号", "village_code": "村代码", "distance_m": "距离（米）",
                                                   "reason": "原因"}), hide_index=True, height=200)


st.subheader("导入数据")
if not account.can("import"):
    st.info("你的角色不能导入数据。")
else:
    fmt.chinese_uploader()
    with st.form("data.import_form"):
        files = st.file_uploader("文件（GeoPackage、Shapefile 全部附属文件、GeoJSON、KML、CSV、Excel）",
                                 accept_multiple_files=True)
        a, b, c = st.columns(3)
        layer = a.selectbox("导入到图层", ingest.IMPORTABLE_LAYERS, key=DATA_IMPORT_LAYER,
                            format_func=lambda n: LAYERS[n].description if n in LAYERS else "村委会位置（推算村界）")
        coords = b.selectbox("坐标系", list(ingest.COORDS), key=DATA_IMPORT_COORDS, format_func=ingest.COORDS.__getitem__)
        strict = c.checkbox("严格模式（有错误行则不导入）")
        d, e = st.columns(2)
        mode = d.selectbox("写入方式", [None, *ingest.MODES], format_func=lambda m: "默认（农户、走访追加；贷款余额同月份同网点同产品替换；其他替换）"
                           if m is None else ingest.MODES[m],
                           help="更新：按户号修改已有农户，只改文件里填了的格，改动记入审计")
        town = e.text_input("乡镇（按村名导入、登记表没有“乡镇”列时）", max_chars=40).strip() or None
        mapping = st.file_uploader("名称对照表（可选，CSV/Excel：乡镇,登记名称,行政区划代码）",
                                   help="确认登记表里村名/组名的写法（拒收文件的“是否指”给出候选）；导入时存入工作区，以后自动采用")
        check = st.form_submit_button("只校验")
        write = st.form_submit_button("校验并导入", type="primary")
    if (check or write) and not files:
        st.warning("请先选择文件。")
    elif check or write:
        with tempfile.TemporaryDirectory() as tmp:
            path = data.save_uploads(files, tmp)
            names = data.save_uploads([mapping], tempfile.mkdtemp(dir=tmp)) if mapping is not None else None
            try:
                if write:
                    report = ingest.import_file(target, layer, path, coords=coords, strict=strict,
                                                account=account, mode=mode, names=names, town=town)
                else:
                    report = ingest.check_file(data.open_workspace(target), layer, path, coords=coords, mode=mode,
                                               names=names, town=town)
            except GridsError as exc:
                st.error(text.markdown(str(exc)))
            else:
                if write and report.written:  # rerun: the figures, checklist and audit above show the import
                    again = rederive(target) if layer == "households" and report.imported else (None, None)
                    st.session_state[DATA_IMPORT_DONE] = (report, *again)
                    st.rerun()
                show_report(report)
    done = st.session_state.pop(DATA_IMPORT_DONE, None)
    if done is not None:
        show_report(done[0])
        show_rederived(done[1], done[2])

st.subheader("最近的操作")
audit = info["audit"] if account.can("view_audit") else None
if audit is None:
    st.caption("审计记录只对管理员和领导开放（“账号与审计”页）。")
elif len(audit):
    st.dataframe(audit.drop(columns=["prev_hash", "hash", "detail_json"], errors="ignore").rename(columns={
        "at": "时间（北京时间）", "actor": "操作人", "action": "操作", "layer": "图层", "revision": "版本", "detail": "详情"}),
        hide_index=True, height=260)
else:
    st.caption("暂无记录。")
