#!/usr/bin/env bash
# Idempotent set-up shared by ./scripts/app and ./scripts/test.
#   scripts/setup.sh [--test]
# - system packages (as root, when missing): a CJK font for rendered maps; with --test also
#   Debian's chromium (browser tests), GDAL (ogrinfo, validate_gpkg.py) and poppler-utils (pdffonts,
#   pdftotext: the monthly report tests)
# - .venv with requirements.txt (reinstalled only when requirements.txt changes)
# - offline map assets under static/vendor (from the npm registry, at install time)
# - the demo workspace workspace/demo.gpkg when missing
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

pkgs=(fonts-noto-cjk)
[ "$want_test" = 1 ] && pkgs+=(chromium gdal-bin python3-gdal sqlite3 poppler-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] apt-get install ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] 缺少系统软件包 / missing system packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
stamp=$(sha256sum requirements.txt | cut -c1-16)
if [ "$(cat .venv/.req-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "[setup] pip install -r requirements.txt"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -m pip install -q -r requirements.txt 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import geopandas, streamlit, folium" # fail loudly if the install failed
  echo "$stamp" > .venv/.req-stamp
fi

if [ -x scripts/fetch_assets.sh ]; then
  scripts/fetch_assets.sh
fi

if [ ! -f workspace/demo.gpkg ]; then
  echo "[setup] 生成演示旗县工作区 / building the demo workspace workspace/demo.gpkg"
  mkdir -p workspace
  .venv/bin/python -m grids demo workspace/demo.gpkg
fi
