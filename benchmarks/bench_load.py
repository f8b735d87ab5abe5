"""Load benchmark: 40 signed-in sessions on one Streamlit server, driven at the protocol level (no browser).

Starts the app (``streamlit run app.py``, headless, a free port on 127.0.0.1) on a private copy of
``workspace/demo.gpkg`` (completed with a published plan and the demo accounts when it lacks them) and opens
sessions over Streamlit's websocket with :class:`benchmarks.st_client.StClient`: 30 branch managers
(``b01``…``b30``) who open 人员分配 and 10 customer managers (real 客户经理 accounts, spread over the
branches) on 走访工作台, arriving one a second (the roles mixed: b01 b02 b03 s002 b04 …). Each signs in through the login form (the text inputs and the
form's submit trigger in one rerun, as the browser sends them), goes to its page, then makes one interaction
every 10 s for 3 minutes:

- branch manager: a click on one of its grids on the map (the map component's value), a change of the
  客户经理 selectbox (download section), a plain rerun — in turn;
- customer manager: 起点 → 地图上点选, a click on the map inside its grids (sets the start point, the page
  reruns itself), 起点 → 网点, a plain rerun — in turn.

Figures: interaction latency (p50/p95/max, from sending the rerun to the script-finished message), sign-in
and page-open latency, errors (exceptions in the deltas, st.error alerts, disconnects, timeouts — a run
longer than 60 s, still measured; a run not finished in 300 s ends its session —, a page that did not show
its title), the server's RSS (the streamlit process and its children, sampled every
0.5 s: peak), the server's CPU (seconds, and cores = seconds / wall time: one process runs every script in
one interpreter, so about 1.0 means its GIL is the limit) and the load average. ``interaction_steady`` counts
only the interactions sent once every session had arrived and opened its page; ``signin_first_s`` is the
first sign-in (cold caches). ``--quick``: 5 sessions for 30 s. The client runs in this process on the same
machine (its CPU time is reported). ``--profile`` (or env ``GRIDS_BENCH_PROFILE=1``) adds where the script
time went (benchmarks/st_profile).

    .venv/bin/python -m grids bench --only load [--quick]
    .venv/bin/python benchmarks/bench_load.py [--quick] [--profile]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from st_client import ClientError, RunResult, StClient  # noqa: E402

from tests.e2e.conftest import DEMO, AppServer, _complete  # noqa: E402

BUDGET = {"p95_s": 5.0, "errors": 0, "rss_gb": 4.0}
INTERVAL_S = 10.0  # one interaction per session every 10 s
SLOW_S = 60.0  # a run that takes longer counts as a timeout error (its time is still measured)
RUN_TIMEOUT_S = 300.0  # a run not finished by then ends the session (a person would have reloaded)


@dataclass
class User:
    """One simulated person: account, the page to work on, map points inside their grids."""

    username: str
    role: str  # "branch_manager" | "customer_manager"
    page: str
    first_page: str
    points: list[tuple[float, float]]  # (lon, lat) display coordinates of the offline basemap


@dataclass
class Record:
    """What all sessions measured."""

    signin: list[float] = field(default_factory=list)
    page_open: list[float] = field(default_factory=list)
    interactions: dict[str, list[float]] = field(default_factory=dict)
    sent_at: list[tuple[float, float]] = field(default_factory=list)  # (monotonic send time, seconds)
    ready_at: list[float] = field(default_factory=list)  # when each session had its page open
    errors: list[str] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)
    done_sessions: int = 0

    def error(self, kind: str, user: str, text: str) -> None:
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
        if len(self.errors) < 20:
            self.errors.append(f"{user}: {kind}: {text[:300]}")


def _users(workspace: Path, *, n_branch: int, n_staff: int) -> list[User]:
    """The branch managers and customer managers to simulate, with points inside their grids."""
    from grids import plans
    from grids.auth import list_accounts
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(workspace)
    accounts = list_accounts(ws)
    accounts = accounts[accounts["active"].astype("boolean").fillna(False)]
    grids = plans.read_grids(ws, plans.resolve_plan(ws))
    pts = grids.geometry.representative_point()
    grids = grids.assign(_x=pts.x, _y=pts.y)

    def points(rows) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in zip(rows["_x"], rows["_y"], strict=True)][:12]

    bms = accounts[accounts["role"] == "branch_manager"].sort_values("username").head(n_branch)
    cms = accounts[accounts["role"] == "customer_manager"].sort_values("username")
    cms = cms[cms["staff_id"].isin(set(grids["staff_id"].dropna().astype(str)))]
    step = max(1, len(cms) // max(1, n_staff))
    cms = cms.iloc[::step].head(n_staff)
    branch = [User(str(r.username), "branch_manager", "人员分配", "覆盖总览",
                   points(grids[grids["branch_id"].astype(str) == str(r.branch_id)])) for r in bms.itertuples()]
    staff = [User(str(r.username), "customer_manager", "走访工作台", "走访工作台",
                  points(grids[grids["staff_id"].astype(str) == str(r.staff_id)])) for r in cms.itertuples()]
    # arrival order: the two roles mixed (b01 b02 b03 s002 b04 …)
    every = max(1, round(len(branch) / max(1, len(staff))))
    out: list[User] = []
    while branch or staff:
        out += [branch.pop(0) for _ in range(min(every, len(branch)))]
        if staff:
            out.append(staff.pop(0))
    return out


def _interaction(user: User, k: int, last: RunResult) -> tuple[str, dict]:
    """The ``k``-th interaction of ``user`` on its page: (name, widget states to send)."""
    def click(field_name: str) -> dict:
        w = last.widget(kind="component_instance", component="st_folium")
        lon, lat = user.points[k % len(user.points)]
        lon += random.uniform(-1e-4, 1e-4)  # a slightly different click each time (the browser's values)
        return {w.id: StClient.component_value(w, {field_name: {"lat": lat, "lng": lon}})}

    if user.role == "branch_manager":
        step = k % 3
        if step == 0 and user.points:
            return "map_click", click("last_object_clicked")
        if step == 1:
            w = last.widget(kind="selectbox", key="staffing.download_staff")
            return "selectbox", {w.id: StClient.choose(w, w.options[(k // 3 + 1) % len(w.options)])}
        return "rerun", {}
    step = k % 4
    if step in (0, 2):
        w = last.widget(kind="radio", key="workbench.start_mode")
        return "radio", {w.id: StClient.choose(w, w.options[1 if step == 0 else 0])}
    if step == 1 and user.points:
        return "map_click", click("last_clicked")
    return "rerun", {}


def _check(run: RunResult, user: User, rec: Record, what: str, title: str | None = None) -> bool:
    ok = True
    if run.seconds > SLOW_S:
        rec.error(f"timeout ({what})", user.username, f"script finished after {run.seconds:.0f} s > {SLOW_S:g} s")
    for text in run.exceptions:
        rec.error(f"exception ({what})", user.username, text)
        ok = False
    for text in run.error_alerts:
        rec.error(f"st.error ({what})", user.username, text)
        ok = False
    if title is not None and not any(h.startswith(title) for h in run.headings):
        rec.error(f"no title ({what})", user.username, f"expected {title!r}, headings {run.headings}")
        ok = False
    return ok


async def _session(user: User, url: str, *, delay: float, duration: float, rec: Record) -> None:
    """One person: arrive after ``delay`` s, sign in, open the page, interact every 10 s for ``duration``."""
    from grids.auth import DEMO_PASSWORD

    await asyncio.sleep(delay)
    client: StClient | None = None
    what = "connect"
    try:
        client = await StClient.connect(url)
        what = "login form"
        login = await client.run(timeout=RUN_TIMEOUT_S)
        if not _check(login, user, rec, what, "网格通"):
            return
        what = "sign-in"
        run = await client.submit_form("登录", {"用户名": user.username, "密码": DEMO_PASSWORD}, last=login,
                                       timeout=RUN_TIMEOUT_S)
        rec.signin.append(run.seconds)
        if not _check(run, user, rec, what, user.first_page):
            return
        if user.page != user.first_page:
            what = "page open"
            run = await client.run(page=user.page, timeout=RUN_TIMEOUT_S)
            rec.page_open.append(run.seconds)
            if not _check(run, user, rec, what, user.page):
                return
        rec.ready_at.append(time.monotonic())
        start = time.monotonic()
        for k in range(int(duration // INTERVAL_S) + 1):  # bounded in count and in time
            due = start + k * INTERVAL_S
            if due - start > duration:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            name, states = _interaction(user, k, run)
            what = f"interaction {name}"
            sent = time.monotonic()
            run = await client.run(states=states, timeout=RUN_TIMEOUT_S)
            rec.interactions.setdefault(f"{user.role}:{name}", []).append(run.seconds)
            rec.sent_at.append((sent, run.seconds))
            _check(run, user, rec, what, user.page)
        rec.done_sessions += 1
    except ClientError as exc:
        kind = "timeout" if "did not finish" in str(exc) else "disconnect"
        rec.error(f"{kind} ({what})", user.username, str(exc))
    except (OSError, KeyError, TimeoutError) as exc:
        rec.error(f"client ({what})", user.username, f"{type(exc).__name__}: {exc}")
    finally:
        if client is not None:
            await client.close()


async def _drive(users: list[User], url: str, *, duration: float, rec: Record) -> None:
    tasks = [asyncio.create_task(_session(u, url, delay=float(i), duration=duration, rec=rec))
             for i, u in enumerate(users)]
    bound = len(users) + duration + 4 * RUN_TIMEOUT_S  # arrivals + interactions + the slowest runs
    _done, pending = await asyncio.wait(tasks, timeout=bound)
    for t in pending:
        t.cancel()
        rec.error("timeout (session)", "-", f"session still running after {bound:.0f} s")
    await asyncio.gather(*pending, return_exceptions=True)


class RssSampler(threading.Thread):
    """Samples the RSS of a process and its children (sum) every ``every`` seconds; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.last = 0
        self.samples = 0
        self.cpu: list[tuple[float, float]] = []  # (time.monotonic(), CPU seconds so far)
        self._halt = threading.Event()

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the process and its children."""
        import psutil

        total = 0.0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def rss(self) -> int:
        import psutil

        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def run(self) -> None:
        import psutil

        while not self._halt.is_set():
            try:
                self.last = self.rss()
            except psutil.Error:
                return
            self.peak = max(self.peak, self.last)
            self.samples += 1
            self.cpu.append((time.monotonic(), self.cpu_s()))
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 3)


def _summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_s": _pct(values, 50), "p95_s": _pct(values, 95),
            "max_s": round(max(values), 3) if values else None}


def _profile_summary(path: Path, samples_per_s: float) -> dict:
    """The sampling profile of the script runs (benchmarks/st_profile): seconds of script-thread time per
    function, inclusive (on the stack) and self (on top), summed over all the sessions' runs."""
    data = json.loads(path.read_text(encoding="utf-8"))

    def secs(rows: list, n: int) -> dict[str, float]:
        return {k: round(v / samples_per_s, 1) for k, v in rows[:n]}

    return {"script_thread_s": round(data["runner_samples"] / samples_per_s, 1),
            "inclusive_s": secs(data["inclusive"], 40), "self_s": secs(data["self"], 15)}


def run(*, quick: bool = False, profile: bool | None = None) -> dict:
    """Drive the sessions against a fresh server; returns the figures (and whether the budget is met).

    ``profile`` (default: env ``GRIDS_BENCH_PROFILE`` set) samples the server's script runs every 20 ms
    (benchmarks/st_profile/sitecustomize.py) and adds where the script time went.
    """
    if profile is None:
        profile = bool(os.environ.get("GRIDS_BENCH_PROFILE"))
    n_branch, n_staff, duration = (3, 2, 30.0) if quick else (30, 10, 180.0)
    random.seed(12)
    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    try:
        if not DEMO.exists():
            return {"skipped": "workspace/demo.gpkg is not built (python -m grids demo)"}
        workspace = tmp / "county.gpkg"
        shutil.copy(DEMO, workspace)
        _complete(workspace)
        users = _users(workspace, n_branch=n_branch, n_staff=n_staff)
        rec = Record()
        out: dict = {"sessions": len(users), "branch_managers": sum(u.role == "branch_manager" for u in users),
                     "customer_managers": sum(u.role == "customer_manager" for u in users),
                     "duration_s": duration, "interval_s": INTERVAL_S, "cpus": os.cpu_count(),
                     "load_average_before": os.getloadavg()}
        client_cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        env = None
        if profile:
            env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks" / "st_profile"),
                                                  os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                   "GRIDS_PROFILE_OUT": str(tmp / "profile.json")}
        server = AppServer(workspace, env=env)
        sampler = RssSampler(server.proc.pid)
        try:
            out["rss_idle_mb"] = round(sampler.rss() / 1e6)
            sampler.start()
            t0, cpu0 = time.perf_counter(), sampler.cpu_s()
            asyncio.run(_drive(users, server.url, duration=duration, rec=rec))
            out["wall_s"] = round(time.perf_counter() - t0, 1)
            out["server_cpu_s"] = round(sampler.cpu_s() - cpu0, 1)
            # one Streamlit process runs the scripts in one interpreter: near 1.0 means its GIL is the limit
            out["server_cpu_cores"] = round(out["server_cpu_s"] / out["wall_s"], 2)
            out["rss_end_mb"] = round(sampler.rss() / 1e6)
        finally:
            try:
                sampler.stop()
            finally:
                server.stop()
        if profile and (tmp / "profile.json").exists():
            out["profile"] = _profile_summary(tmp / "profile.json", 1 / 0.02)
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        out["client_cpu_s"] = round(cpu.ru_utime + cpu.ru_stime - client_cpu0.ru_utime - client_cpu0.ru_stime, 1)
        out["load_average_after"] = os.getloadavg()
        every = [s for v in rec.interactions.values() for s in v]
        out["interaction"] = _summary(every)
        out["interaction_by_kind"] = {k: _summary(v) for k, v in sorted(rec.interactions.items())}
        # steady state: interactions sent once every session has arrived, signed in and opened its page
        if len(rec.ready_at) == len(users) and sampler.cpu:
            ready = max(rec.ready_at)
            steady = [s for t, s in rec.sent_at if t >= ready]
            out["interaction_steady"] = _summary(steady)
            # the server's CPU cost of an arrival (sign-in and first pages, cold per-account data) and of a
            # steady interaction; the demand in cores at this arrival rate and interaction rate
            first = sampler.cpu[0][1]
            at_ready = next((c for t, c in sampler.cpu if t >= ready), sampler.cpu[-1][1])
            per_arrival = (at_ready - first) / len(users)
            per_interaction = (sampler.cpu[-1][1] - at_ready) / len(steady) if steady else None
            out["server_cpu_per_arrival_s"] = round(per_arrival, 2)
            out["server_cpu_per_interaction_s"] = round(per_interaction, 3) if per_interaction else None
            out["demand_cores"] = {
                "arrivals_1_per_s": round(per_arrival, 2),
                f"{len(users)}_sessions_1_per_{INTERVAL_S:g}s": (
                    round(len(users) * per_interaction / INTERVAL_S, 2) if per_interaction else None),
                "40_sessions_1_per_10s": round(40 * per_interaction / 10, 2) if per_interaction else None,
            }
        out["signin"] = _summary(rec.signin)
        out["signin_first_s"] = round(rec.signin[0], 3) if rec.signin else None  # cold caches
        out["page_open"] = _summary(rec.page_open)
        out["sessions_completed"] = rec.done_sessions
        out["errors"] = sum(rec.error_kinds.values())
        out["error_kinds"] = rec.error_kinds
        out["error_samples"] = rec.errors
        out["rss_peak_mb"] = round(sampler.peak / 1e6)
        out["rss_samples"] = sampler.samples
        p95 = out["interaction"]["p95_s"]
        out["budgets"] = {
            f"p95<={BUDGET['p95_s']:g}s": p95 is not None and p95 <= BUDGET["p95_s"],
            "errors==0": out["errors"] == 0 and rec.done_sessions == len(users),
            f"rss<={BUDGET['rss_gb']:g}GB": sampler.peak <= BUDGET["rss_gb"] * 1e9,
        }
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    print(json.dumps(run(quick="--quick" in sys.argv, profile="--profile" in sys.argv or None),
                     ensure_ascii=False, indent=2))
