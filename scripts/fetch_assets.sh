#!/usr/bin/env bash
# Fetches the third-party map assets (Leaflet and the plugins our maps use) from the npm registry at
# install time and unpacks their dist files into static/vendor/<package>/, which Streamlit serves at
# /app/static/vendor/... (see .streamlit/config.toml). Nothing is fetched at run time: the app works with
# no internet access at all. Idempotent: does nothing when static/vendor/VERSIONS matches the list below.
#   scripts/fetch_assets.sh [--force]
# Needs npm (Debian: apt-get install npm). PyPI carries no Leaflet, so there is no pip fallback; on a
# machine without npm copy static/vendor/ from a machine that has it (it is plain files).
set -euo pipefail
cd "$(dirname "$0")/.."
VENDOR=static/vendor

# jquery only because folium's Popup template calls $(...); bootstrap and awesome-markers are not used.
# package@version  then the files to keep: "src:dst" pairs (dst relative to static/vendor/<package>/)
PACKAGES=(
  "leaflet@1.9.4 dist/leaflet.js:leaflet.js dist/leaflet.css:leaflet.css dist/images:images"
  "leaflet.markercluster@1.5.3 dist/leaflet.markercluster.js:leaflet.markercluster.js
   dist/MarkerCluster.css:MarkerCluster.css dist/MarkerCluster.Default.css:MarkerCluster.Default.css"
  "leaflet-draw@1.0.4 dist/leaflet.draw.js:leaflet.draw.js dist/leaflet.draw.css:leaflet.draw.css dist/images:images"
  "jquery@3.7.1 dist/jquery.min.js:jquery.min.js"
  "leaflet.fullscreen@3.0.2 Control.FullScreen.js:Control.FullScreen.js Control.FullScreen.css:Control.FullScreen.css
   icon-fullscreen.svg:icon-fullscreen.svg"
)
want=$(for entry in "${PACKAGES[@]}"; do echo "${entry%% *}"; done)

if [ "${1:-}" != "--force" ] && [ "$(cat "$VENDOR/VERSIONS" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "[assets] 缺少 npm，无法下载离线地图资源（Leaflet 等）。修正方法：apt-get install npm 后重新运行" \
       "scripts/fetch_assets.sh；或从已安装的机器复制 static/vendor/ 目录。" \
       "/ npm is missing: PyPI has no Leaflet, so install npm (or copy static/vendor/ from another machine)." >&2
  exit 1
fi

echo "[assets] 从 npm 下载离线地图资源 / fetching map assets from the npm registry into $VENDOR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
staging="$tmp/vendor"
mkdir -p "$staging"
for entry in "${PACKAGES[@]}"; do
  read -r -a parts <<<"$(echo "$entry" | tr '\n' ' ')"
  spec=${parts[0]}
  name=${spec%@*}
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  tarball=$(ls "$tmp"/*.tgz)
  mkdir -p "$tmp/x" "$staging/$name"
  tar -xzf "$tarball" -C "$tmp/x"
  for pair in "${parts[@]:1}"; do
    src=${pair%%:*}
    dst=${pair#*:}
    cp -r "$tmp/x/package/$src" "$staging/$name/$dst"
  done
  rm -rf "$tmp/x" "$tarball"
done
echo "$want" >"$staging/VERSIONS"
# swap in atomically-ish: a half-fetched tree never replaces a working one
mkdir -p static
rm -rf "$VENDOR.old"
[ -d "$VENDOR" ] && mv "$VENDOR" "$VENDOR.old"
mv "$staging" "$VENDOR"
rm -rf "$VENDOR.old"
echo "[assets] 完成 / done: $(echo "$want" | tr '\n' ' ')"
