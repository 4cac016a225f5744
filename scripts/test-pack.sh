#!/usr/bin/env bash
# The install a technician gets: `npm pack` the project (with prebuilds/ made by `npm run build:linux` and
# `npm run build:windows`), install the tarball into an empty directory with a PATH that holds no cc, c++, g++,
# gcc, make or python3, and run `npx mocopy devices --json` and `npx mocopy demo` there. Fails unless mocopy's addon
# is loaded from prebuilds/linux-x64 and no build/ directory is made for it.
# better-sqlite3 downloads its prebuilt binary from GitHub on a normal machine; these machines cannot reach it. Its
# installer (prebuild-install) first looks in a local prebuilds directory: this test puts there the binary that
# `npm ci` compiled in the repository, named as the download would be, so the whole install runs without a compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
ROOT=$PWD
fail() { echo "test-pack: FAIL: $*" >&2; exit 1; }
ls prebuilds/linux-x64/*.node >/dev/null 2>&1 || fail "no prebuilds/linux-x64/*.node: run npm run build:linux first"
ls prebuilds/win32-x64/*.node >/dev/null 2>&1 || fail "no prebuilds/win32-x64/*.node: run npm run build:windows first"
SQLITE_NODE=node_modules/better-sqlite3/build/Release/better_sqlite3.node
[ -f "$SQLITE_NODE" ] || fail "$SQLITE_NODE missing (npm ci builds it)"

W=$(mktemp -d "${TMPDIR:-/tmp}/test-pack.XXXXXX")
trap 'rm -rf "$W"' EXIT
passed=0; failed=0
check() { # check NAME COMMAND...: one line per check, counted
  if "${@:2}" >"$W/check.txt" 2>&1; then passed=$((passed + 1)); echo "ok - $1"
  else failed=$((failed + 1)); echo "not ok - $1"; sed 's/^/  /' "$W/check.txt" | tail -15; fi
}

# 1. The tarball (npm pack runs `prepare`, i.e. the TypeScript build).
npm pack --silent --pack-destination "$W" >"$W/pack.txt" 2>"$W/pack-err.txt" || { cat "$W/pack-err.txt" >&2; fail "npm pack"; }
TGZ="$W/$(tail -1 "$W/pack.txt")"
tar tzf "$TGZ" >"$W/contents.txt"
check "the tarball holds the linux-x64 and win32-x64 prebuilds" grep -qE '^package/prebuilds/linux-x64/[^/]+\.node$' "$W/contents.txt"
check "... and the win32-x64 one" grep -qE '^package/prebuilds/win32-x64/[^/]+\.node$' "$W/contents.txt"
check "the tarball holds no build/ output" bash -c "! grep -qE '^package/(build|build-windows|build-cmake)/' '$W/contents.txt'"

# 2. A PATH with node and npm but no compiler, make or python.
SAFE="$W/safe-bin"; mkdir -p "$SAFE"
for t in node npm npx sh bash env cat ls rm mkdir cp mv ln chmod uname tar gzip dirname basename sed grep; do
  p=$(command -v "$t" || true); [ -n "$p" ] && ln -sf "$(readlink -f "$p")" "$SAFE/$t"
done
# npm and npx are scripts that locate npm-cli.js relative to themselves: link them as the originals.
ln -sf "$(command -v npm)" "$SAFE/npm"; ln -sf "$(command -v npx)" "$SAFE/npx"
check "no cc, c++, g++, gcc, make or python3 on the install PATH" \
  env PATH="$SAFE" bash -c 'for t in cc c++ g++ gcc make python3 python; do if command -v $t >/dev/null; then echo "found $t"; exit 1; fi; done'

# 3. better-sqlite3's "download", from a local prebuilds directory (see the header).
SQ_VER=$(node -p "require('./node_modules/better-sqlite3/package.json').version")
mkdir -p "$W/sq/build/Release" "$W/local-prebuilds"
cp "$SQLITE_NODE" "$W/sq/build/Release/"
tar czf "$W/local-prebuilds/better-sqlite3-v$SQ_VER-node-v$(node -p process.versions.modules)-linux-x64.tar.gz" -C "$W/sq" build

# 4. Install the tarball into an empty directory, no compiler anywhere on PATH, registry packages from npm's cache.
APP="$W/app"; mkdir -p "$APP"
# allowScripts (npm >= 11.16; enforced from npm 12): the station approves the two install scripts it needs. A
# tarball is named by its file: spec (from the registry it would be "mocopy"; `npm install-scripts approve` writes it).
echo "{\"name\":\"station\",\"private\":true,\"allowScripts\":{\"file:$TGZ\":true,\"better-sqlite3\":true}}" >"$APP/package.json"
( cd "$APP" && env PATH="$SAFE" npm_config_better_sqlite3_local_prebuilds="$W/local-prebuilds" \
    npm install --no-audit --no-fund --prefer-offline --foreground-scripts "$TGZ" "better-sqlite3@$SQ_VER" ) >"$W/install.txt" 2>&1 \
  && install_rc=0 || install_rc=$?
check "npm install of the tarball succeeds without a compiler" test "$install_rc" -eq 0
[ "$install_rc" -eq 0 ] || tail -30 "$W/install.txt"
M="$APP/node_modules/mocopy"
check "no build/ directory was made for mocopy's addon" test ! -e "$M/build"
check "better-sqlite3 was installed from the local prebuild, not compiled" \
  cmp "$APP/node_modules/better-sqlite3/build/Release/better_sqlite3.node" "$SQLITE_NODE"
check "npm reports no install script left unreviewed (allowScripts)" bash -c "grep -iE 'not yet covered by allowScripts|install-scripts ' '$W/install.txt' && exit 1 || exit 0"
check "the install did not fall back to compiling (no node-gyp run, no failure message)" \
  bash -c "! grep -qE 'gyp info|compiling one failed' '$W/install.txt'"

# 5. Run it there: the CLI, the addon from prebuilds/, the emulated drives end to end.
cd "$APP"
check "npx mocopy devices --json prints a device list" \
  bash -c "env PATH='$SAFE' npx --no-install mocopy devices --json | tee '$W/devices.json' | node -e 'const d=JSON.parse(require(\"fs\").readFileSync(0,\"utf8\")); if(!Array.isArray(d.devices)) process.exit(1)'"
check "the addon loads from prebuilds/linux-x64 (node-gyp-build), a real open gives a typed error" \
  env PATH="$SAFE" node --input-type=module -e "
    const { loadNativeBinding, loadedAddonPath } = await import('$M/dist/lib/scsi/native-binding.js');
    const { openNative } = await import('$M/dist/lib/scsi/native-transport.js');
    const b = loadNativeBinding(); await b.nopAsync();
    const p = loadedAddonPath(); console.log('loaded', p);
    if (!/\/prebuilds\/linux-x64\/[^/]+\.node\$/.test(p)) process.exit(1);
    try { await openNative('/nonexistent/sg9'); process.exit(1); } catch (e) { if (e.code !== 'ENOENT') throw e; }"
check "npx mocopy demo runs the whole system on emulated drives" \
  bash -c "env PATH='$SAFE' npx --no-install mocopy demo >'$W/demo.txt' 2>&1 || { tail -20 '$W/demo.txt'; exit 1; }"
tail -3 "$W/demo.txt" | sed 's/^/  demo: /'
check "still no build/ directory after running" test ! -e "$M/build"
echo "test-pack: $passed passed, $failed failed (${SECONDS}s)"
[ "$failed" -eq 0 ]
