#!/usr/bin/env bash
# Unit tests of the Windows backend's post-IOCTL length clamp (native/spt_clamp.h, issue 17) and of the device
# listing's parsers (native/win_list_parse.h, issue 13), each run twice:
# natively with g++ (quick check), then as a static PE32+ built with mingw-w64 and run under wine64, so the
# test also runs with the Windows toolchain's types and C runtime. Fails if either run fails or a tool is missing.
# Needs: apt-get install -y g++ g++-mingw-w64-x86-64 wine64   (Debian's wine64 puts its loader in /usr/lib/wine)
set -euo pipefail
cd "$(dirname "$0")/.."
SRCS=(native/test/spt_clamp_test.cc native/test/win_list_parse_test.cc)
CXXFLAGS=(-std=c++17 -Wall -Wextra -Werror -O2)
missing() { echo "test-windows-clamp: $1 not found ($2)" >&2; exit 1; }

HOST_CXX=${CXX:-g++}
MINGW_CXX=${CXX_MINGW:-x86_64-w64-mingw32-g++-posix}
WINE=${WINE64:-$(command -v wine64 || true)}
[ -n "$WINE" ] || { [ -x /usr/lib/wine/wine64 ] && WINE=/usr/lib/wine/wine64; }
command -v file >/dev/null || missing file "apt-get install file"
command -v "$HOST_CXX" >/dev/null || missing "$HOST_CXX" "apt-get install g++"
command -v "$MINGW_CXX" >/dev/null || missing "$MINGW_CXX" "apt-get install g++-mingw-w64-x86-64"
if [ -z "$WINE" ]; then missing "wine64 (neither on PATH nor /usr/lib/wine/wine64)" "apt-get install --no-install-recommends wine64"; fi
[ -x "$WINE" ] || missing "wine64 at $WINE" "apt-get install --no-install-recommends wine64, or unset WINE64"

W=$(mktemp -d "${TMPDIR:-/tmp}/test-windows-clamp.XXXXXX")
trap 'rm -rf "$W"' EXIT

fail=0
for SRC in "${SRCS[@]}"; do
T=$(basename "$SRC" .cc)
echo "== $T native ($("$HOST_CXX" --version | head -1))"
"$HOST_CXX" "${CXXFLAGS[@]}" "$SRC" -o "$W/$T"
"$W/$T" >"$W/$T.native.txt" && native_rc=0 || native_rc=$?
cat "$W/$T.native.txt"

echo "== $T mingw-w64 + wine64 ($("$MINGW_CXX" --version | head -1))"
# -static: libstdc++, libgcc and winpthread inside the .exe, so Wine needs nothing but its own DLLs.
"$MINGW_CXX" "${CXXFLAGS[@]}" -static -static-libgcc -static-libstdc++ "$SRC" -o "$W/$T.exe"
file "$W/$T.exe" | grep -q 'PE32+ executable' || { echo "test-windows-clamp: not a PE32+ executable: $(file -b "$W/$T.exe")" >&2; exit 1; }
# A throwaway prefix (created on first start, a few seconds); Wine's console pipes misbehave, so stdout goes to a file.
export WINEDEBUG=-all WINEPREFIX="$W/prefix" WINEDLLOVERRIDES="mscoree,mshtml="
timeout 240 "$WINE" "$W/$T.exe" >"$W/$T.wine.txt" 2>"$W/$T.wine-err.txt" && wine_rc=0 || wine_rc=$?
tr -d '\r' <"$W/$T.wine.txt"

[ "$native_rc" -eq 0 ] || { echo "test-windows-clamp: $T native run failed (exit $native_rc)" >&2; fail=1; }
if [ "$wine_rc" -ne 0 ]; then
  echo "test-windows-clamp: $T wine64 run failed (exit $wine_rc)" >&2; tail -5 "$W/$T.wine-err.txt" >&2; fail=1
fi
# The closing line must be there and say 0 failed (a run that dies early prints none).
for f in native wine; do
  tr -d '\r' <"$W/$T.$f.txt" | tail -1 | grep -qE '^[0-9]+ passed, 0 failed$' \
    || { echo "test-windows-clamp: $T $f run has no '<n> passed, 0 failed' closing line" >&2; fail=1; }
done
done
# Wait for this prefix's wineserver before the trap removes the prefix.
WINESERVER=$(dirname "$WINE")/wineserver
[ -x "$WINESERVER" ] && "$WINESERVER" -w 2>/dev/null || true
[ "$fail" -eq 0 ] && echo "test-windows-clamp: OK (native and wine64)"
exit "$fail"
