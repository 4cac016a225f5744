#!/usr/bin/env bash
# Links the win32-x64 addon on Linux: native/addon.cc + native/spt_windows.cc compiled with mingw-w64 against
# node-api-headers (its include/ and its .def files, an npm devDependency) into prebuilds/win32-x64/mocopy.node,
# the name node-gyp-build looks for on Windows. node.exe exports Node-API itself: dlltool makes an import library
# for it from the two .def files. -static puts libstdc++, libgcc and winpthread inside the .node, so a station needs
# nothing but Windows' own DLLs. The result is checked here: PE32+ DLL, imports only from the allowed set.
# Needs: apt-get install -y g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64 file
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
# The -posix variant: node-addon-api needs std::mutex, which the win32-threads variant lacks.
CXX=${CXX_MINGW:-$(command -v x86_64-w64-mingw32-g++-posix || echo x86_64-w64-mingw32-g++)}
DLLTOOL=${DLLTOOL_MINGW:-x86_64-w64-mingw32-dlltool}
OBJDUMP=${OBJDUMP_MINGW:-x86_64-w64-mingw32-objdump}
STRIP=${STRIP_MINGW:-x86_64-w64-mingw32-strip}
for t in "$CXX" "$DLLTOOL" "$OBJDUMP" "$STRIP" file; do
  command -v "$t" >/dev/null || { echo "build-windows: $t not found (apt-get install g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64 file)" >&2; exit 1; }
done
NAPIH=$(node -p "require('path').dirname(require.resolve('node-api-headers/package.json'))" 2>/dev/null) \
  || { echo "build-windows: node-api-headers is not installed (npm ci installs it: a devDependency)" >&2; exit 1; }
NAPI_INC=$(node -p "require('node-addon-api').include_dir")
OUT=build-windows
DEST=prebuilds/win32-x64
mkdir -p "$OUT" "$DEST"
rm -f "$OUT"/*.o "$DEST"/*.node   # nothing stale is linked or shipped

# 1. Objects. No MSVC-only constructs in the sources: -Werror keeps it so.
for src in native/spt_windows.cc native/addon.cc native/list_windows.cc; do
  [ -f "$src" ] || continue
  "$CXX" -std=c++17 -Wall -Wextra -Werror -O2 -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS -D_WIN32_WINNT=0x0601 \
    -I"$NAPIH/include" -I"$NAPI_INC" -c "$src" -o "$OUT/$(basename "$src" .cc).o"
done

# 2. The import library for node.exe. The .def files have CRLF line ends, no final newline, and each names
#    NODE.EXE itself: normalise, drop those lines, merge, and name the library once.
{ echo "LIBRARY node.exe"; echo "EXPORTS"
  for f in "$NAPIH/def/js_native_api.def" "$NAPIH/def/node_api.def"; do tr -d '\r' <"$f"; echo; done \
    | grep -vE '^(NAME|LIBRARY|EXPORTS)|^[[:space:]]*$' | sort -u; } >"$OUT/node.def"
"$DLLTOOL" -d "$OUT/node.def" -l "$OUT/libnode.a" -D node.exe

# 3. Link and strip.
"$CXX" -shared -static -Wl,--no-insert-timestamp -o "$DEST/mocopy.node" "$OUT"/*.o -L"$OUT" -lnode -lsetupapi
"$STRIP" --strip-unneeded "$DEST/mocopy.node"

# 4. Check what was made: a PE32+ DLL for x86-64 that imports only from node.exe and Windows' own DLLs.
desc=$(file -b "$DEST/mocopy.node")
echo "build-windows: $DEST/mocopy.node: $desc"
case "$desc" in *"PE32+ executable (DLL)"*x86-64*) ;; *) echo "build-windows: not a PE32+ x86-64 DLL" >&2; exit 1 ;; esac
imports=$("$OBJDUMP" -p "$DEST/mocopy.node" | sed -n 's/^[[:space:]]*DLL Name: //p' | sort -u)
echo "build-windows: imports: $(echo $imports)"
# The allowed set: node.exe (Node-API), KERNEL32 (files, ioctls, threads), msvcrt (the C runtime every Windows has),
# SETUPAPI (device listing: SetupDi*, a Windows system DLL since Windows 2000).
bad=$(echo "$imports" | grep -viE '^(node\.exe|KERNEL32\.dll|msvcrt\.dll|SETUPAPI\.dll)$' || true)
[ -z "$bad" ] || { echo "build-windows: unexpected imports: $(echo $bad)" >&2; exit 1; }
echo "$imports" | grep -qx 'node.exe' || { echo "build-windows: node.exe is not imported (Node-API unresolved?)" >&2; exit 1; }
# Every Node-API function the addon calls must be one node.exe exports (the .def lists exactly those).
missing=$("$OBJDUMP" -p "$DEST/mocopy.node" | awk '/DLL Name: node.exe/{f=1;next} /DLL Name:|Export Tables/{f=0} f && $NF ~ /^napi_|^node_api_/{print $NF}' \
  | while read -r s; do grep -qx "$s" "$OUT/node.def" || echo "$s"; done)
[ -z "$missing" ] || { echo "build-windows: imports not in node.exe's exports: $missing" >&2; exit 1; }
n=$("$OBJDUMP" -p "$DEST/mocopy.node" | awk '/DLL Name: node.exe/{f=1;next} /DLL Name:|Export Tables/{f=0} f && $NF ~ /^napi_|^node_api_/' | wc -l)
echo "build-windows: OK, $(stat -c %s "$DEST/mocopy.node") bytes, $n Node-API imports, $("$CXX" --version | head -1) (${SECONDS}s)"
