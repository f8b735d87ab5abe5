"""Browser benchmark of the overview page: data sent, time to paint, time for a click to update the panel.

Runs the app (``streamlit run app.py``) on the demo workspace (a synthetic county of the same scale when the
demo is not built) in headless Debian chromium, and, in the same run, a baseline app: a plain ``st_folium``
map of every grid as a naive ``folium.GeoJson`` (full geometry, SVG, tooltip, the whole script rerunning on
every interaction) — only its asset links are made local so that it can load at all without internet.

Our app is opened as a user does: sign in as ``leader`` (the overview is the first page) — ``paint_s``
runs from the click on 登录 to the map painting (it includes the sign-in rerun); ``nav_paint_s`` from a
click on the overview's navigation link (signed in, coming from another page) to the map painting, the
median of ``NAV_REPEATS`` navigations per load. The baseline has no sign-in: ``paint_s`` runs from opening its
URL. Load averages are reported before and after.

Figures are medians over repeats on a warm server (the first, cold load is reported separately); ratios
are ours / baseline. Bytes are what the browser received over Streamlit's websocket while the page loaded
(the map data travels there); static files (Streamlit's and Leaflet's JS, cached by browsers) are reported
apart.

    .venv/bin/python benchmarks/bench_app.py
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DEMO, AppServer, _complete  # noqa: E402

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
NAV_LINK = '[data-testid="stSidebarNavLink"]'
NAV_REPEATS = 6
"""Navigations back to the overview per load: one navigation varies by ±30 % on this machine, so its median
needs more samples than a page load (a 0.1 s difference was noise at 3 samples)."""

BASELINE_APP = '''
import folium, streamlit as st
from streamlit_folium import st_folium
from grids.maps import GeoJsonTooltip, localize
from grids.workspace import open_workspace
import os

st.set_page_config(layout="wide")
ws = open_workspace(os.environ["GRIDS_WORKSPACE"])
areas = ws.read("grids") if ws.count("grids") else ws.read("admin_units", where="level = 'village'")
st.title("baseline")
m = folium.Map(tiles=None)
# the escaping tooltip: localize() refuses folium's own (it would put names into the page as HTML)
folium.GeoJson(areas[["name", "geometry"]].to_json(), tooltip=GeoJsonTooltip(["name"])).add_to(m)
b = areas.total_bounds
m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
localize(m)
left, right = st.columns([3, 1.25])
with left:
    out = st_folium(m, height=620, use_container_width=True)
with right:
    tip = (out or {}).get("last_object_clicked_tooltip")
    st.subheader(tip.replace("name", "").strip() if tip else "点击地图")
'''

# painted pixels of the canvas(es) and SVG paths in the overlay pane
PAINTED = """() => {
  let n = document.querySelectorAll('.leaflet-overlay-pane path').length * 50;
  for (const c of document.querySelectorAll('.leaflet-overlay-pane canvas')) {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 16) { if (d[i] > 0) n++; }
  }
  return n;
}"""

CLICK_POINT = """([lon, lat]) => {
  const map = window.map;
  const hide = document.createElement('style');  // a click on a household bubble zooms instead of selecting
  hide.textContent = '.grids-hh-cluster { display: none !important; }';
  document.head.appendChild(hide);
  const p = map.latLngToContainerPoint([lat, lon]);
  const r = map.getContainer().getBoundingClientRect();
  return [r.left + p.x, r.top + p.y];
}"""


def _areas(workspace: Path, n: int) -> list[tuple[str, float, float]]:
    """(name, lon, lat) of the ``n`` largest areas with distinct names (grids, else villages)."""
    from grids.crs import to_gk
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(workspace)
    areas = ws.read("grids") if ws.count("grids") else ws.read("admin_units", where="level = 'village'")
    areas = areas.assign(_a=to_gk(areas).area).sort_values("_a", ascending=False).drop_duplicates("name")
    pts = areas.geometry.representative_point()
    return [(str(nm), p.x, p.y) for nm, p in zip(areas["name"][:n], pts[:n], strict=True)]


def _painted(page, heading: str, t0: float) -> float:
    """Seconds from ``t0`` until the page shows ``heading`` and its map has painted."""
    page.get_by_role("heading", name=heading).wait_for(timeout=120_000)
    page.frame_locator(MAP_FRAME).locator(".leaflet-overlay-pane").wait_for(state="attached", timeout=120_000)
    frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    while frame.evaluate(PAINTED) < 2000:
        if time.perf_counter() - t0 > 120:
            raise TimeoutError("map did not paint in 120 s")
        time.sleep(0.05)
    return time.perf_counter() - t0


def _load(browser, url: str, heading: str, *, user: str | None) -> dict:
    """Open ``url`` in a fresh context (signing in as ``user`` when given); time from opening the page
    (the click on 登录, which lands on the overview) to the map painting, and bytes received meanwhile."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    page = ctx.new_page()
    got = {"ws": 0, "http": 0, "foreign": []}
    host = url.split("//", 1)[1]

    def on_ws(ws):
        ws.on("framereceived", lambda payload: got.__setitem__("ws", got["ws"] + len(payload)))

    def on_response(resp):
        if host not in resp.url:
            got["foreign"].append(resp.url)
        with contextlib.suppress(Exception):  # redirects and aborted responses have no body
            got["http"] += len(resp.body())

    page.on("websocket", on_ws)
    page.on("response", on_response)
    if user:
        from grids.auth import DEMO_PASSWORD

        page.goto(url + "/", wait_until="domcontentloaded")
        page.get_by_label("用户名").fill(user, timeout=120_000)
        page.get_by_label("密码").fill(DEMO_PASSWORD)
        page.wait_for_timeout(500)  # the login page's own messages are not the map's
        got.update(ws=0, http=0)
    t0 = time.perf_counter()
    if user:
        page.get_by_role("button", name="登录").click()
    else:
        page.goto(url + "/", wait_until="commit")
    paint = _painted(page, heading, t0)
    page.wait_for_timeout(1000)  # late messages of the same load
    frame = next(f for f in page.frames if "streamlit_folium" in f.url)
    out = {"page": page, "ctx": ctx, "frame": frame, "paint_s": paint, "ws_bytes": got["ws"],
           "http_bytes": got["http"], "foreign": got["foreign"]}
    if user:
        out["nav_paint_s"] = [_reopen(page, heading) for _ in range(NAV_REPEATS)]
        out["frame"] = next(f for f in page.frames if "streamlit_folium" in f.url)
    return out


def _reopen(page, heading: str) -> float:
    """Signed in: go to another page, then time a click on the overview's navigation link until the map
    paints again (opening the page without signing in; the browser may already hold the map's data)."""
    links = page.locator(NAV_LINK)
    other = next(t.strip().split("\n")[-1] for t in links.all_inner_texts() if heading not in t)
    links.filter(has_text=other).click()
    page.get_by_role("heading", name=re.compile("^" + other)).wait_for(timeout=60_000)
    page.locator(MAP_FRAME).wait_for(state="detached", timeout=60_000)
    page.wait_for_timeout(1000)
    t0 = time.perf_counter()
    links.filter(has_text=heading).click()
    paint = _painted(page, heading, t0)
    page.wait_for_timeout(500)
    return paint


def _click(load: dict, name: str, lon: float, lat: float) -> float:
    page, frame = load["page"], load["frame"]
    page.locator(MAP_FRAME).scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    x, y = frame.evaluate(CLICK_POINT, [lon, lat])
    t0 = time.perf_counter()
    page.locator(MAP_FRAME).click(position={"x": x, "y": y})
    page.get_by_role("heading", name=name, exact=True).wait_for(timeout=60_000)
    return time.perf_counter() - t0


def _measure(browser, url: str, heading: str, areas, *, repeats: int, user: str | None = None) -> dict:
    cold = _load(browser, url, heading, user=user)
    cold["ctx"].close()
    loads, clicks = [], []
    for i in range(repeats):
        ld = _load(browser, url, heading, user=user)
        loads.append(ld)
        if i == 0:
            for name, lon, lat in areas:
                clicks.append(_click(ld, name, lon, lat))
        ld["ctx"].close()
    return {
        "cold_paint_s": round(cold["paint_s"], 2),
        "paint_s": round(statistics.median(x["paint_s"] for x in loads), 2),
        "paint_s_all": [round(x["paint_s"], 2) for x in loads],
        "nav_paint_s": (round(statistics.median(t for x in loads for t in x["nav_paint_s"]), 2)
                        if all("nav_paint_s" in x for x in loads) else None),
        "nav_paint_s_all": [round(t, 2) for x in loads for t in x.get("nav_paint_s", [])],
        "ws_mb": round(statistics.median(x["ws_bytes"] for x in loads) / 1e6, 2),
        "http_mb": round(statistics.median(x["http_bytes"] for x in loads) / 1e6, 2),
        "click_s": round(statistics.median(clicks), 2),
        "click_s_all": [round(c, 2) for c in clicks],
        "clicks": len(clicks),
        "foreign_requests": sorted({u for x in [cold, *loads] for u in x["foreign"]}),
    }


def run(*, quick: bool = False) -> dict:
    """Measure the overview page and the naive baseline; returns the figures and ratios."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.synth import make_workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench_app_"))
    try:
        workspace = tmp / "county.gpkg"
        if DEMO.exists():
            shutil.copy(DEMO, workspace)
            source = "workspace/demo.gpkg"
        else:
            make_workspace(workspace)
            source = "synthetic county (demo not built)"
        _complete(workspace)  # a published plan and the demo accounts (sign in as leader)
        base_dir = tmp / "baseline"
        base_dir.mkdir()
        (base_dir / "baseline_app.py").write_text(BASELINE_APP, encoding="utf-8")
        # a copy, not a symlink: Streamlit's static server refuses files that resolve outside the app's static/
        shutil.copytree(ROOT / "static", base_dir / "static")
        areas = _areas(workspace, 2 if quick else 5)
        repeats = 1 if quick else 3
        out: dict = {"workspace": source, "repeats": repeats, "load_average_before": os.getloadavg()}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            ours = AppServer(workspace)
            try:
                out["overview"] = _measure(browser, ours.url, "覆盖总览", areas, repeats=repeats, user="leader")
            finally:
                ours.stop()
            base = AppServer(workspace, script=base_dir / "baseline_app.py",
                             env={"PYTHONPATH": str(ROOT)})
            try:
                out["baseline"] = _measure(browser, base.url, "baseline", areas, repeats=repeats)
            finally:
                base.stop()
            browser.close()
        out["load_average_after"] = os.getloadavg()
        o, b = out["overview"], out["baseline"]
        out["ratios"] = {k: round(o[k] / b[k], 2) if b[k] else None for k in ("ws_mb", "paint_s", "click_s")}
        out["budgets"] = {"ws_mb<=3": o["ws_mb"] <= 3, "paint_s<=3": o["paint_s"] <= 3,
                          "click_s<=1": o["click_s"] <= 1}
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    print(json.dumps(run(quick="--quick" in sys.argv), ensure_ascii=False, indent=2))
