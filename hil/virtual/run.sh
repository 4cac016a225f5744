#!/usr/bin/env bash
# The virtual HIL rig: a real Linux kernel under QEMU does the SG_IO. Boots a Debian cloud kernel with
# virtio-scsi, a scsi-cd holding a master built by `mocopy master build`, a scsi-hd (serial=) and
# scsi_debug as an optical-memory (type 7, removable, 2048-byte) drive, and (the iSCSI stage) mocopy's
# emulated MO drive served on the host by `mocopy emu serve --iscsi` and attached through QEMU's own iSCSI
# initiator as a scsi-generic device; runs the HIL suite in the guest through mocopy's native addon, opens the
# guest's copies from the MO image on the host, runs the same suite on the host against the emulator; compares.
# The iSCSI stage also runs the differential run (hil/virtual/differential.ts: the same seeded CDBs to scsi_debug
# and to a served MO) and faults through the kernel: a write medium error, and a power cut (its own target, which
# this script stops and serves again once the cut has happened).
# Needs: qemu-system-x86, qemu-block-extra (QEMU's iscsi driver), busybox-static, cpio (apt), network access to
# Debian's archive for `apt-get download` of the kernel and sg3-utils (cached in $MOCOPY_HIL_WORK).
# MOCOPY_HIL_ISCSI=0 leaves the iSCSI stage out (and with it the differential run and the fault checks).
# MOCOPY_HIL_DIFF_SEED / _COUNT / _WINDOW: the differential run's seed, number of CDBs and commands in flight
# (20261110, 10000, 8).
# MOCOPY_HIL_PCUT_WRITES: the power cut comes after this many writes to its disc (3: inside the copy's data).
# MOCOPY_HIL_GUEST_ONLY=differential: the guest runs only that part (while working on the rig; the run then fails).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
W=${MOCOPY_HIL_WORK:-${TMPDIR:-/tmp}/mocopy-hil}
LIMIT=${MOCOPY_HIL_TIMEOUT:-900}
ISCSI=${MOCOPY_HIL_ISCSI:-1}
DIFF_SEED=${MOCOPY_HIL_DIFF_SEED:-20261110}
DIFF_COUNT=${MOCOPY_HIL_DIFF_COUNT:-10000}
mkdir -p "$W/debs"
log() { echo "hil: $*"; }

for t in qemu-system-x86_64 cpio gzip gcc; do command -v $t >/dev/null || { echo "hil: $t missing (apt-get install qemu-system-x86 busybox-static cpio gcc)" >&2; exit 2; }; done
BUSYBOX=$(dpkg -L busybox-static 2>/dev/null | grep 'bin/busybox$' | head -1 || true)
[ -n "$BUSYBOX" ] || { echo "hil: busybox-static missing (apt-get install busybox-static)" >&2; exit 2; }
if [ "$ISCSI" = 1 ] && ! ls /usr/lib/*/qemu/block-iscsi.so >/dev/null 2>&1; then
  echo "hil: QEMU has no iscsi block driver (apt-get install qemu-block-extra), or run with MOCOPY_HIL_ISCSI=0" >&2; exit 2
fi
[ -f dist/hil/virtual/guest-main.js ] && [ -f dist/hil/virtual/iscsi-host.js ] || npm run build --silent
# The addon the guest runs: node-gyp's build, else the prebuild (prebuildify leaves build/ without the .node).
ADDON=""
for f in build/Release/mocopy_native.node prebuilds/linux-x64/*.node; do [ -f "$f" ] && { ADDON="$PWD/$f"; break; }; done
[ -n "$ADDON" ] || { echo "hil: the native addon is not built (npx node-gyp rebuild, or npm run build:linux)" >&2; exit 2; }

# 1. Kernel and sg3_utils from Debian's packages (cached).
cd "$W/debs"
KPKG=$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-cloud-amd64-unsigned$' | sort -V | tail -1 | cut -d' ' -f1)
LIBSG=$(apt-cache depends sg3-utils | sed -n 's/.*Depends: \(libsgutils2[^ ]*\).*/\1/p' | head -1)
[ -n "$KPKG" ] || { echo "hil: no cloud kernel package found (apt-get update first)" >&2; exit 2; }
ls "$KPKG"_*.deb >/dev/null 2>&1 || apt-get download "$KPKG" >/dev/null
ls sg3-utils_*.deb >/dev/null 2>&1 || apt-get download sg3-utils >/dev/null
ls "$LIBSG"_*.deb >/dev/null 2>&1 || apt-get download "$LIBSG" >/dev/null
cd "$W"
rm -rf k sg rootfs media && mkdir -p k sg media rootfs/{bin,dev,proc,sys,mods,tmp,data,app,etc}
dpkg -x debs/"$KPKG"_*.deb k
dpkg -x debs/sg3-utils_*.deb sg
dpkg -x debs/"$LIBSG"_*.deb sg
KVER=$(ls k/lib/modules)
M=k/lib/modules/$KVER
log "kernel $KVER"

# 2. Kernel modules, dependencies first (read from each module's depends= string).
ko() { find "$M" -name "$1.ko" -o -name "$1.ko.xz" | head -1; }
ORDER=""
add() {
  local m=$1 f d; case " $ORDER " in *" $m "*) return;; esac
  f=$(ko "$m"); [ -n "$f" ] || { echo "hil: module $m not found" >&2; exit 2; }
  for d in $( (case $f in *.xz) xz -dc "$f";; *) cat "$f";; esac) | strings | sed -n 's/^depends=//p' | tr ',' ' '); do add "$d"; done
  ORDER="$ORDER $m"
}
for m in sd_mod sr_mod sg virtio_pci virtio_scsi scsi_debug; do add "$m"; done
for m in $ORDER; do f=$(ko "$m"); case $f in *.xz) xz -dc "$f" > rootfs/mods/$m.ko;; *) cp "$f" rootfs/mods/$m.ko;; esac; done
echo "$ORDER" | sed 's/ scsi_debug//' > rootfs/mods/order

# 3. Userland: busybox, node and the libraries it needs, sg3_utils, the C TEST UNIT READY loop.
cp "$BUSYBOX" rootfs/bin/busybox
cp sg/usr/bin/{sg_inq,sg_readcap,sg_dd,sg_vpd,sg_raw,sg_turs,sg_rmsn} rootfs/bin/
mkdir -p rootfs/usr/lib/x86_64-linux-gnu && cp -a sg/usr/lib/x86_64-linux-gnu/libsgutils2* rootfs/usr/lib/x86_64-linux-gnu/
cp "$(command -v node)" rootfs/bin/node
gcc -static -O2 -pthread -o rootfs/bin/tur "$ROOT/hil/bench/tur.c"
# (the CLI also loads @node-rs/crc32's addon: the iSCSI code's CRC32C, which lib/index.js pulls in)
for lib in $(ldd sg/usr/bin/sg_inq "$(command -v node)" "$ADDON" "$ROOT"/node_modules/better-sqlite3/build/Release/better_sqlite3.node \
    "$ROOT"/node_modules/@node-rs/crc32-linux-*/*.node 2>/dev/null | awk '/=> \// {print $3} /^[[:space:]]*\/lib/ {print $1}' | sort -u); do
  mkdir -p "rootfs$(dirname "$lib")"; cp -L "$lib" "rootfs$lib"
done

# 4. mocopy itself: the build, the addon, and the node_modules the guest needs (no compilers, no typings).
cp -a "$ROOT"/package.json "$ROOT"/dist rootfs/app/
mkdir -p rootfs/app/build/Release && cp "$ADDON" rootfs/app/build/Release/mocopy_native.node
cp "$ROOT"/binding.gyp rootfs/app/
tar -C "$ROOT" -cf - --exclude='node_modules/typescript' --exclude='node_modules/@esbuild' --exclude='node_modules/esbuild' \
  --exclude='node_modules/@types' --exclude='node_modules/node-gyp' --exclude='node_modules/cmake-js' --exclude='node_modules/better-sqlite3/deps' \
  --exclude='node_modules/better-sqlite3/src' --exclude='node_modules/better-sqlite3/build/Release/obj*' --exclude='node_modules/tsx' node_modules | tar -C rootfs/app -xf -

# 5. Media and the license center, made on the host with mocopy's own commands.
MOCOPY="node $ROOT/dist/cli/main.js"
head -c 3000000 /dev/urandom > rootfs/data/HIL-APP-1.bin
head -c 1234567 /dev/urandom > rootfs/data/HIL-APP-2.bin
# Two small programs for the iSCSI MO (one per scheme; TCG is slow, so 256 KiB each).
head -c 262144 /dev/urandom > rootfs/data/HIL-MO-A.bin
head -c 262144 /dev/urandom > rootfs/data/HIL-MO-B.bin
rm -f media/ledger.db*
$MOCOPY center station add "virtual rig" --db media/ledger.db --key-out rootfs/data/station.key >/dev/null
$MOCOPY master build --out media/master.iso --content HIL-APP-1=rootfs/data/HIL-APP-1.bin:"HIL program 1" \
  --content HIL-APP-2=rootfs/data/HIL-APP-2.bin:"HIL program 2" --content HIL-MO-A=rootfs/data/HIL-MO-A.bin:"HIL iSCSI program A" \
  --content HIL-MO-B=rootfs/data/HIL-MO-B.bin:"HIL iSCSI program B" --center-db media/ledger.db >/dev/null
cp media/ledger.db rootfs/data/ledger.db
truncate -s 64M media/disk.img

ms() { echo $(( $(date +%s%N) / 1000000 )); }

# 5b. The iSCSI stage's MO disc: a blank image with a known medium ID ("MOCOPY-ISCSI"), and what the guest
# should find (it takes the /dev/sgN whose INQUIRY says MOCOPY / EMU MO DRIVE).
ISCSI_MID=4d4f434f50592d4953435349
ISCSI_IQN=iqn.2026-11.org.mocopy:hil-virtual
ISCSI_INITIATOR=iqn.2026-11.org.mocopy:hil-qemu
# 5c. The differential run's disc: 4 MiB of 2048-byte blocks, zero-filled, the size scsi_debug is loaded with for it
# (dev_size_mb=4: 2048 blocks on both); LUN 1 of the same target.
DIFF_MID=4d4f434f50592d44494646
DIFF_SD="dev_size_mb=4 sector_size=2048 ptype=7 removable=1 delay=0 max_luns=1 num_tgts=1"
rm -f media/iscsi-mo.img media/diff-mo.img rootfs/data/iscsi.json rootfs/data/differential.json rootfs/data/guest-only
if [ "$ISCSI" = 1 ]; then
  $MOCOPY emu create-mo media/iscsi-mo.img --medium-id $ISCSI_MID --capacity 64M >/dev/null
  $MOCOPY emu create-mo media/diff-mo.img --medium-id $DIFF_MID --capacity 4M --block-size 2048 >/dev/null
  cat > rootfs/data/iscsi.json <<JSON
{"vendor":"MOCOPY","product":"EMU MO DRIVE","mediumId":"$ISCSI_MID",
 "copies":[{"contentId":"HIL-MO-A","scheme":"a","file":"/data/HIL-MO-A.bin"},{"contentId":"HIL-MO-B","scheme":"b","file":"/data/HIL-MO-B.bin"}]}
JSON
  echo "{\"mediumId\":\"$DIFF_MID\",\"seed\":$DIFF_SEED,\"count\":$DIFF_COUNT,\"window\":${MOCOPY_HIL_DIFF_WINDOW:-8},\"scsiDebug\":\"$DIFF_SD\"}" > rootfs/data/differential.json
fi

# 5d. The fault discs: two 4 MiB discs that already hold one licensed copy (HIL-MO-A, copied here with mocopy's own
# copy command against the in-process emulator, on a ledger of their own), served with a device-spec fault: a write
# medium error over the whole data area (LUN 2 of the target above), and a power cut after a few writes (a target of
# its own, so the connections it drops are its own; step 7 serves the image again once the cut has happened). The
# guest copies HIL-MO-B onto each. The reference: the same copy onto a copy of the medium-error disc, with the same
# fault, in-process; the guest's station must report what it reports.
FAULT_MID=4d4f434f50592d4641554c54
PCUT_MID=4d4f434f50592d50435554
FAULT_SPEC=medium-error:write:160-2047
PCUT_WRITES=${MOCOPY_HIL_PCUT_WRITES:-3}
PCUT_IQN=iqn.2026-11.org.mocopy:hil-power-cut
rm -f media/fault-* media/pcut-* media/prep-ledger.db* rootfs/data/fault-reference.json
if [ "$ISCSI" = 1 ]; then
  ts=$(ms)
  cp media/ledger.db media/prep-ledger.db
  for d in fault:$FAULT_MID pcut:$PCUT_MID; do
    $MOCOPY emu create-mo "media/${d%%:*}-mo.img" --medium-id "${d#*:}" --capacity 4M >/dev/null
    $MOCOPY copy emu:media/master.iso "emu:media/${d%%:*}-mo.img" --content HIL-MO-A --scheme a --center-db media/prep-ledger.db \
      --station-key rootfs/data/station.key >> media/fault-discs.log 2>&1
    cp "media/${d%%:*}-mo.img" "media/${d%%:*}-mo.before.img"
  done
  cp media/fault-mo.img media/fault-ref.img
  rc=0
  out=$($MOCOPY copy emu:media/master.iso "emu:media/fault-ref.img?fault=$FAULT_SPEC" --content HIL-MO-B --scheme b \
    --center-db media/prep-ledger.db --station-key rootfs/data/station.key --json 2>/dev/null) || rc=$?
  printf '{"exit":%d,"last":%s}\n' "$rc" "$(printf '%s\n' "$out" | tail -1)" > rootfs/data/fault-reference.json
  log "fault discs ready in $(( $(ms) - ts )) ms (in-process reference: the copy onto the medium-error disc exits $rc)"
  node -e '
    const f = process.argv[1]; const j = JSON.parse(require("fs").readFileSync(f, "utf8"));
    j.faults = { contentId: "HIL-MO-B", scheme: "b", file: "/data/HIL-MO-B.bin", before: ["HIL-MO-A"],
      mediumError: { mediumId: process.argv[2], fault: process.argv[4], reference: "/data/fault-reference.json" },
      powerCut: { mediumId: process.argv[3], fault: "power-cut-after-writes:" + process.argv[5] } };
    require("fs").writeFileSync(f, JSON.stringify(j) + "\n");' rootfs/data/iscsi.json $FAULT_MID $PCUT_MID $FAULT_SPEC $PCUT_WRITES
fi
[ -n "${MOCOPY_HIL_GUEST_ONLY:-}" ] && echo "$MOCOPY_HIL_GUEST_ONLY" > rootfs/data/guest-only

# 6. The guest's init.
cat > rootfs/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu PATH=/bin HOME=/tmp
for m in $(cat /mods/order); do insmod /mods/$m.ko; done
insmod /mods/scsi_debug.ko dev_size_mb=32 sector_size=2048 ptype=7 removable=1 delay=0 max_luns=1 num_tgts=1
want=3; [ -f /data/iscsi.json ] && want=7
i=0; while [ $i -lt 50 ] && [ "$(ls /sys/class/scsi_generic 2>/dev/null | wc -l)" -lt $want ]; do sleep 0.2; i=$((i+1)); done
echo "@@MOCOPY-DATA {\"kind\":\"boot\",\"uptime\":$(cut -d' ' -f1 /proc/uptime),\"sg\":\"$(ls /sys/class/scsi_generic | tr '\n' ' ')\"}"
cd /app && node dist/hil/virtual/guest-main.js
poweroff -f
INIT
chmod +x rootfs/init
(cd rootfs && find . | cpio -o -H newc 2>/dev/null | gzip -1 > ../initrd.gz)
log "initramfs $(du -h initrd.gz | cut -f1)"

# 7. Boot (TCG; KVM only when asked for with MOCOPY_HIL_KVM=1 and /dev/kvm is usable).
ACCEL=tcg
[ -w /dev/kvm ] && [ "${MOCOPY_HIL_KVM:-0}" = 1 ] && ACCEL=kvm

# The iSCSI targets: mocopy's emulated MO drives, on loopback ports the kernel picks (port 0; the ready line names
# it). QEMU logs in at start-up, so the targets must be ready before QEMU runs. The first serves the main MO (LUN 0),
# the differential run's (LUN 1) and the medium-error disc (LUN 2); the second the power-cut disc alone.
TPID="" P2PID="" QPID="" ISCSI_QEMU=()
rm -f iscsi-target.log iscsi-target.err pcut-target*.log pcut-target*.err iscsi-state.json iscsi-host.log
cleanup() {
  [ -n "$QPID" ] && kill -KILL $(pgrep -P "$QPID") "$QPID" 2>/dev/null
  for p in $TPID $P2PID; do kill -0 "$p" 2>/dev/null && { kill -TERM "$p"; wait "$p" 2>/dev/null; }; done
  return 0
}
trap cleanup EXIT
# ready LOG PID: waits (up to 30 s) for a target's ready line and prints its portal.
ready() {
  local portal=""
  for _ in $(seq 300); do
    portal=$(sed -n 's/^{"event":"ready","portal":"\([0-9.:]*\)".*/\1/p' "$1" 2>/dev/null | head -1)
    [ -n "$portal" ] && break
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "$portal"
}
if [ "$ISCSI" = 1 ]; then
  ts=$(ms)
  $MOCOPY emu serve --iscsi --listen 127.0.0.1:0 --iqn $ISCSI_IQN --mo "$W/media/iscsi-mo.img" --mo "$W/media/diff-mo.img" \
    --mo "$W/media/fault-mo.img?fault=$FAULT_SPEC" --json > iscsi-target.log 2> iscsi-target.err &
  TPID=$!
  PORTAL=$(ready iscsi-target.log $TPID)
  [ -n "$PORTAL" ] || { echo "hil: the iSCSI target gave no ready line:" >&2; cat iscsi-target.log iscsi-target.err >&2; exit 2; }
  READY_MS=$(( $(ms) - ts ))
  log "iSCSI target $ISCSI_IQN ready on $PORTAL in ${READY_MS} ms (LUN 0: MO, medium ID $ISCSI_MID; LUN 1: the differential run's MO; LUN 2: $FAULT_SPEC)"
  $MOCOPY emu serve --iscsi --listen 127.0.0.1:0 --iqn $PCUT_IQN --mo "$W/media/pcut-mo.img?fault=power-cut-after-writes:$PCUT_WRITES" \
    --json > pcut-target.log 2> pcut-target.err &
  P2PID=$!
  PCUT_PORTAL=$(ready pcut-target.log $P2PID)
  [ -n "$PCUT_PORTAL" ] || { echo "hil: the power-cut target gave no ready line:" >&2; cat pcut-target.log pcut-target.err >&2; exit 2; }
  log "iSCSI target $PCUT_IQN ready on $PCUT_PORTAL (LUN 0: power-cut-after-writes:$PCUT_WRITES)"
  ISCSI_QEMU=(-iscsi "initiator-name=$ISCSI_INITIATOR"
    -drive "if=none,id=m0,file=iscsi://$PORTAL/$ISCSI_IQN/0,format=raw" -device scsi-generic,drive=m0
    -drive "if=none,id=m1,file=iscsi://$PORTAL/$ISCSI_IQN/1,format=raw" -device scsi-generic,drive=m1
    -drive "if=none,id=m2,file=iscsi://$PORTAL/$ISCSI_IQN/2,format=raw" -device scsi-generic,drive=m2
    -drive "if=none,id=m3,file=iscsi://$PCUT_PORTAL/$PCUT_IQN/0,format=raw" -device scsi-generic,drive=m3)
fi

log "booting QEMU ($ACCEL), limit ${LIMIT}s"
t0=$(date +%s)
timeout "$LIMIT" qemu-system-x86_64 -accel $ACCEL -m 2048 -smp 2 -nographic -no-reboot \
  -kernel k/boot/vmlinuz-"$KVER" -initrd initrd.gz -append "console=ttyS0 quiet panic=-1 loglevel=3" \
  -device virtio-scsi-pci,id=scsi0 \
  -drive if=none,id=d0,file=media/disk.img,format=raw,cache=unsafe -device scsi-hd,drive=d0,serial=MO-TEST-0001 \
  -drive if=none,id=c0,file=media/master.iso,format=raw,readonly=on -device scsi-cd,drive=c0 \
  ${ISCSI_QEMU[@]+"${ISCSI_QEMU[@]}"} \
  </dev/null > console.log 2>&1 &
QPID=$!
# A target that goes away under QEMU leaves the guest waiting on the LUN (and QEMU ignoring SIGTERM while its
# initiator reconnects), so the rig stops QEMU itself rather than sit out the whole limit. The power-cut target is
# the exception, by design: once its drive has cut the power (its log says so), it is stopped, the image is kept as
# the cut left it (for iscsi-host.ts), and the same image is served again on the same portal, without the fault: the
# initiator's reconnection then reaches a drive that has power again, and says so as a real one does (--power-on:
# POWER ON OCCURRED to the first command of each initiator).
TGONE="" PCUT_AT="" PCUT_MS="" PCUT_EXIT=""
while kill -0 $QPID 2>/dev/null; do
  if [ -n "$TPID" ] && [ -z "$TGONE" ] && ! kill -0 $TPID 2>/dev/null; then
    TGONE=1
    echo "hil: the iSCSI target exited while the guest was running: stopping QEMU" >&2
    kill -KILL $(pgrep -P $QPID) 2>/dev/null || true
  fi
  if [ -n "$P2PID" ] && [ -z "$PCUT_AT" ] && grep -q 'stopped answering (power cut)' pcut-target.log 2>/dev/null; then
    PCUT_AT=$(ms)
    kill -TERM $P2PID
    for _ in $(seq 50); do kill -0 $P2PID 2>/dev/null || break; sleep 0.1; done
    kill -0 $P2PID 2>/dev/null && kill -KILL $P2PID
    PCUT_EXIT=0; wait $P2PID 2>/dev/null || PCUT_EXIT=$?
    cp media/pcut-mo.img media/pcut-mo.at-cut.img
    $MOCOPY emu serve --iscsi --power-on --listen "$PCUT_PORTAL" --iqn $PCUT_IQN --mo "$W/media/pcut-mo.img" --json > pcut-target-2.log 2> pcut-target-2.err &
    P2PID=$!
    [ -n "$(ready pcut-target-2.log $P2PID)" ] || echo "hil: the power-cut disc could not be served again:" "$(cat pcut-target-2.err)" >&2
    PCUT_MS=$(( $(ms) - PCUT_AT ))
    log "power cut: its target stopped (exit $PCUT_EXIT), the image kept as the cut left it, and served again on $PCUT_PORTAL ${PCUT_MS} ms after the cut"
  fi
  sleep 0.2
done
qrc=0; wait $QPID || qrc=$?
QPID=""
log "guest ran $(( $(date +%s) - t0 ))s (qemu exit $qrc)"
[ $qrc -eq 124 ] && echo "hil: QEMU hit the ${LIMIT}s limit (hang?)"

# 7b. The iSCSI stage on the host: stop the targets (SIGTERM; 10 s grace, then SIGKILL) and check they exited
# cleanly, then open the guest's copies from the MO images themselves and compare them with the publisher's files;
# check the fault discs against the images kept before the boot and at the power cut; replay the differential run.
# stop PID: sets STOPPED to its exit status after SIGTERM, or to why there is none (not in a subshell: it waits).
stop() {
  local rc=0
  if kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1"
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$1" 2>/dev/null; then kill -KILL "$1"; wait "$1" 2>/dev/null || true; STOPPED='"killed after 10 s"'; return; fi
    wait "$1" || rc=$?
    STOPPED=$rc
  else
    wait "$1" || rc=$?
    STOPPED="\"gone before SIGTERM (exit $rc)\""
  fi
}
if [ -n "$TPID" ]; then
  ts=$(ms)
  stop $TPID; TEXIT=$STOPPED
  TPID=""
  STOP_MS=$(( $(ms) - ts ))
  P2EXIT='"not started"'
  [ -n "$P2PID" ] && { stop $P2PID; P2EXIT=$STOPPED; P2PID=""; }
  log "iSCSI targets stopped: ${STOP_MS} ms (exit $TEXIT); the power-cut disc's (exit $P2EXIT)"
  cat > iscsi-state.json <<JSON
{"cli":"$ROOT/dist/cli/main.js","image":"$W/media/iscsi-mo.img","stationKey":"$W/rootfs/data/station.key",
 "targetLog":"$W/iscsi-target.log","targetErr":"$W/iscsi-target.err","targetExit":$TEXIT,"initiator":"$ISCSI_INITIATOR",
 "consoleLog":"$W/console.log","work":"$W/media","readyMs":$READY_MS,"stopMs":$STOP_MS,
 "copies":[{"contentId":"HIL-MO-A","scheme":"a","file":"$W/rootfs/data/HIL-MO-A.bin"},{"contentId":"HIL-MO-B","scheme":"b","file":"$W/rootfs/data/HIL-MO-B.bin"}],
 "faults":{"copy":{"contentId":"HIL-MO-B","scheme":"b","file":"$W/rootfs/data/HIL-MO-B.bin"},"before":["HIL-MO-A"],
  "mediumError":{"image":"$W/media/fault-mo.img","beforeImage":"$W/media/fault-mo.before.img","fault":"$FAULT_SPEC","reference":"$W/rootfs/data/fault-reference.json"},
  "powerCut":{"image":"$W/media/pcut-mo.img","beforeImage":"$W/media/pcut-mo.before.img","atCutImage":"$W/media/pcut-mo.at-cut.img",
   "fault":"power-cut-after-writes:$PCUT_WRITES","logs":["$W/pcut-target.log","$W/pcut-target-2.log"],"errs":["$W/pcut-target.err","$W/pcut-target-2.err"],
   "cutExit":${PCUT_EXIT:-null},"reservedMs":${PCUT_MS:-null},"secondExit":$P2EXIT}}}
JSON
  ts=$(ms)
  node "$ROOT/dist/hil/virtual/iscsi-host.js" iscsi-state.json > iscsi-host.log 2>&1 || true
  log "iSCSI host checks took $(( $(ms) - ts )) ms"
fi

# 8. The same suite on the host against the emulator (the cross-check).
rm -rf emu && mkdir -p emu
$MOCOPY emu create-mo emu/mo2048.mo --medium-id 0102030405060708 --capacity 32M --block-size 2048 >/dev/null
$MOCOPY emu create-mo emu/mo512.mo --medium-id 1112131415161718 --capacity 64M --block-size 512 >/dev/null
cp media/ledger.db emu/ledger.db
RIG=$(cat <<JSON
{"mode":"emulator","cd":{"spec":"emu-cd:$W/media/master.iso","role":"emulator-cd"},
 "targets":[{"spec":"emu-mo:$W/emu/mo2048.mo","role":"emulator-mo-2048"},{"spec":"emu-mo:$W/emu/mo512.mo","role":"emulator-mo-512"}],
 "ledger":"$W/emu/ledger.db","stationKey":"$W/rootfs/data/station.key",
 "programs":{"HIL-APP-1":"$W/rootfs/data/HIL-APP-1.bin","HIL-APP-2":"$W/rootfs/data/HIL-APP-2.bin"},"work":"$W/emu"}
JSON
)
(cd "$ROOT" && MOCOPY_HIL_RIG="$RIG" node node_modules/mocha/bin/mocha.js --no-config --reporter json-stream dist/hil/suite/suite.spec.js > "$W/emulator.log" 2>&1) || true

# 9. Summary, cross-check table, exit status.
# (guest-bench.json: the guest's benchmark figures as { name, value, unit, baseline, ratio, goal }.)
rm -f "$W/guest-bench.json"
MOCOPY_HIL_GUEST_BENCH="$W/guest-bench.json" node "$ROOT/dist/hil/virtual/summarize.js" "$W/console.log" "$W/emulator.log" "$W/crosscheck.md" ${TEXIT+"$W/iscsi-host.log"}
