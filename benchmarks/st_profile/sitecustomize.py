"""Sampling profiler for the Streamlit server under load (``bench_load --profile``); inert without the env.

Put this directory on ``PYTHONPATH`` and set ``GRIDS_PROFILE_OUT`` to a file: Python imports
``sitecustomize`` at start-up, and this one starts a thread that every 20 ms looks at the stacks of the
script-runner threads (the ones running app.py and the pages) and counts, per function, how many samples
had it on the stack (inclusive) and on top (self); SIGUSR1 starts the counts afresh. At exit (the benchmark stops the server with SIGTERM;
Streamlit shuts down and exits normally) the counts are written to ``GRIDS_PROFILE_OUT`` as JSON.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import signal
import sys
import threading
import time

_OUT = os.environ.get("GRIDS_PROFILE_OUT")


def _start(out: str) -> None:
    inclusive: collections.Counter[str] = collections.Counter()
    top: collections.Counter[str] = collections.Counter()
    state = {"samples": 0, "busy": 0}
    stop = threading.Event()

    def where(frame) -> str:
        code = frame.f_code
        name = code.co_filename
        for marker in ("/site-packages/", "/wt/", "/work/main/"):
            if marker in name:
                name = name.split(marker, 1)[1]
                break
        return f"{name}:{code.co_name}"

    def sample() -> None:
        while not stop.wait(0.02):
            names = {t.ident: t.name for t in threading.enumerate()}
            state["samples"] += 1
            for ident, frame in sys._current_frames().items():
                if "ScriptRunner" not in names.get(ident, ""):
                    continue
                state["busy"] += 1
                seen = set()
                f = frame
                top[where(f)] += 1
                while f is not None:
                    key = where(f)
                    if key not in seen:
                        inclusive[key] += 1
                        seen.add(key)
                    f = f.f_back

    def dump() -> None:
        stop.set()
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"interval_s": 0.02, "samples": state["samples"], "runner_samples": state["busy"],
                       "inclusive": inclusive.most_common(60), "self": top.most_common(40),
                       "written": time.time()}, fh, ensure_ascii=False, indent=1)

    def reset(*_: object) -> None:  # SIGUSR1: forget the warm-up (sign-ins, cold caches)
        inclusive.clear()
        top.clear()
        state.update(samples=0, busy=0)

    threading.Thread(target=sample, name="grids-profiler", daemon=True).start()
    atexit.register(dump)
    signal.signal(signal.SIGUSR1, reset)


if _OUT:
    _start(_OUT)
