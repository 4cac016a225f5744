#!/usr/bin/env bash
# Compiles the Windows backend (native/spt_windows.cc) and the N-API core (native/addon.cc) with
# mingw-w64 against node-addon-api and Node's headers, so the Windows pass-through code cannot rot
# on a Linux CI. Objects only: linking needs node.lib (a Windows SDK import library) that Debian does not ship.
set -euo pipefail
cd "$(dirname "$0")/.."
# The -posix variant: node-addon-api needs std::mutex, which the win32-threads variant lacks.
CXX=${CXX_MINGW:-$(command -v x86_64-w64-mingw32-g++-posix || echo x86_64-w64-mingw32-g++)}
command -v "$CXX" >/dev/null || { echo "build-windows: $CXX not found (apt-get install g++-mingw-w64-x86-64)" >&2; exit 1; }
NODE_INC=""
for d in "$(npm config get nodedir 2>/dev/null)/include/node" "$(dirname "$(dirname "$(command -v node)")")/include/node"; do
  if [ -f "$d/node_api.h" ]; then NODE_INC=$d; break; fi
done
[ -n "$NODE_INC" ] || { echo "build-windows: Node headers (node_api.h) not found" >&2; exit 1; }
NAPI_INC=$(node -p "require('node-addon-api').include_dir")
OUT=build-windows
mkdir -p "$OUT"
for src in native/spt_windows.cc native/addon.cc; do
  "$CXX" -std=c++17 -Wall -Wextra -Werror -O2 -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS -D_WIN32_WINNT=0x0601 \
    -I"$NODE_INC" -I"$NAPI_INC" -c "$src" -o "$OUT/$(basename "$src" .cc).o"
done
echo "build-windows: compiled $(ls "$OUT"/*.o | wc -l) objects with $("$CXX" --version | head -1)"
