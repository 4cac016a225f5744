#!/usr/bin/env bash
# The virtual HIL rig: a real Linux kernel under QEMU does the SG_IO. Boots a Debian cloud kernel with
# virtio-scsi, a scsi-cd holding a master built by `mocopy master build`, a scsi-hd (serial=) and
# scsi_debug as an optical-memory (type 7, removable, 2048-byte) drive, and (the iSCSI stage) mocopy's
# emulated MO drive served on the host by `mocopy emu serve --iscsi` and attached through QEMU's own iSCSI
# initiator as a scsi-generic device; runs the HIL suite in the guest through mocopy's native addon, opens the
# guest's copies from the MO image on the host, runs the same suite on the host against the emulator; compares.
# Needs: qemu-system-x86, qemu-block-extra (QEMU's iscsi driver), busybox-static, cpio (apt), network access to
# Debian's archive for `apt-get download` of the kernel and sg3-utils (cached in $MOCOPY_HIL_WORK).
# MOCOPY_HIL_ISCSI=0 leaves the iSCSI stage out.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
W=${MOCOPY_HIL_WORK:-${TMPDIR:-/tmp}/mocopy-hil}
LIMIT=${MOCOPY_HIL_TIMEOUT:-900}
ISCSI=${MOCOPY_HIL_ISCSI:-1}
mkdir -p "$W/debs"
log() { echo "hil: $*"; }

for t in qemu-system-x86_64 cpio gzip gcc; do command -v $t >/dev/null || { echo "hil: $t missing (apt-get install qemu-system-x86 busybox-static cpio gcc)" >&2; exit 2; }; done
BUSYBOX=$(dpkg -L busybox-static 2>/dev/null | grep 'bin/busybox$' | head -1 || true)
[ -n "$BUSYBOX" ] || { echo "hil: busybox-static missing (apt-get install busybox-static)" >&2; exit 2; }
if [ "$ISCSI" = 1 ] && ! ls /usr/lib/*/qemu/block-iscsi.so >/dev/null 2>&1; then
  echo "hil: QEMU has no iscsi block driver (apt-get install qemu-block-extra), or run with MOCOPY_HIL_ISCSI=0" >&2; exit 2
fi
[ -f dist/hil/virtual/guest-main.js ] && [ -f dist/hil/virtual/iscsi-host.js ] || npm run build --silent
[ -f build/Release/mocopy_native.node ] || { echo "hil: the native addon is not built (npx node-gyp rebuild)" >&2; exit 2; }

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
for lib in $(ldd sg/usr/bin/sg_inq "$(command -v node)" "$ROOT/build/Release/mocopy_native.node" "$ROOT"/node_modules/better-sqlite3/build/Release/better_sqlite3.node 2>/dev/null | awk '/=> \// {print $3} /^[[:space:]]*\/lib/ {print $1}' | sort -u); do
  mkdir -p "rootfs$(dirname "$lib")"; cp -L "$lib" "rootfs$lib"
done

# 4. mocopy itself: the build, the addon, and the node_modules the guest needs (no compilers, no typings).
cp -a "$ROOT"/package.json "$ROOT"/dist rootfs/app/
mkdir -p rootfs/app/build/Release && cp "$ROOT"/build/Release/mocopy_native.node rootfs/app/build/Release/
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

# 5b. The iSCSI stage's MO disc: a blank image with a known medium ID ("MOCOPY-ISCSI"), and what the guest
# should find (it takes the /dev/sgN whose INQUIRY says MOCOPY / EMU MO DRIVE).
ISCSI_MID=4d4f434f50592d4953435349
ISCSI_IQN=iqn.2026-11.org.mocopy:hil-virtual
ISCSI_INITIATOR=iqn.2026-11.org.mocopy:hil-qemu
rm -f media/iscsi-mo.img rootfs/data/iscsi.json
if [ "$ISCSI" = 1 ]; then
  $MOCOPY emu create-mo media/iscsi-mo.img --medium-id $ISCSI_MID --capacity 64M >/dev/null
  cat > rootfs/data/iscsi.json <<JSON
{"vendor":"MOCOPY","product":"EMU MO DRIVE","mediumId":"$ISCSI_MID",
 "copies":[{"contentId":"HIL-MO-A","scheme":"a","file":"/data/HIL-MO-A.bin"},{"contentId":"HIL-MO-B","scheme":"b","file":"/data/HIL-MO-B.bin"}]}
JSON
fi

# 6. The guest's init.
cat > rootfs/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu PATH=/bin HOME=/tmp
for m in $(cat /mods/order); do insmod /mods/$m.ko; done
insmod /mods/scsi_debug.ko dev_size_mb=32 sector_size=2048 ptype=7 removable=1 delay=0 max_luns=1 num_tgts=1
want=3; [ -f /data/iscsi.json ] && want=4
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
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# The iSCSI target: mocopy's emulated MO drive as LUN 0, on a loopback port the kernel picks (port 0; the ready
# line names it). QEMU logs in at start-up, so the target must be ready before QEMU runs.
TPID="" QPID="" ISCSI_QEMU=()
rm -f iscsi-target.log iscsi-target.err iscsi-state.json iscsi-host.log
cleanup() {
  [ -n "$QPID" ] && kill -KILL $(pgrep -P "$QPID") "$QPID" 2>/dev/null
  [ -n "$TPID" ] && kill -0 "$TPID" 2>/dev/null && { kill -TERM "$TPID"; wait "$TPID" 2>/dev/null; }
  return 0
}
trap cleanup EXIT
if [ "$ISCSI" = 1 ]; then
  ts=$(ms)
  $MOCOPY emu serve --iscsi --listen 127.0.0.1:0 --iqn $ISCSI_IQN --mo "$W/media/iscsi-mo.img" --json > iscsi-target.log 2> iscsi-target.err &
  TPID=$!
  PORTAL=""
  for _ in $(seq 300); do
    PORTAL=$(sed -n 's/^{"event":"ready","portal":"\([0-9.:]*\)".*/\1/p' iscsi-target.log | head -1)
    [ -n "$PORTAL" ] && break
    kill -0 $TPID 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$PORTAL" ] || { echo "hil: the iSCSI target gave no ready line:" >&2; cat iscsi-target.log iscsi-target.err >&2; exit 2; }
  READY_MS=$(( $(ms) - ts ))
  log "iSCSI target $ISCSI_IQN ready on $PORTAL in ${READY_MS} ms (LUN 0: MO, medium ID $ISCSI_MID)"
  ISCSI_QEMU=(-iscsi "initiator-name=$ISCSI_INITIATOR"
    -drive "if=none,id=m0,file=iscsi://$PORTAL/$ISCSI_IQN/0,format=raw" -device scsi-generic,drive=m0)
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
# initiator reconnects), so the rig stops QEMU itself rather than sit out the whole limit.
TGONE=""
while kill -0 $QPID 2>/dev/null; do
  if [ -n "$TPID" ] && [ -z "$TGONE" ] && ! kill -0 $TPID 2>/dev/null; then
    TGONE=1
    echo "hil: the iSCSI target exited while the guest was running: stopping QEMU" >&2
    kill -KILL $(pgrep -P $QPID) 2>/dev/null || true
  fi
  sleep 0.2
done
qrc=0; wait $QPID || qrc=$?
QPID=""
log "guest ran $(( $(date +%s) - t0 ))s (qemu exit $qrc)"
[ $qrc -eq 124 ] && echo "hil: QEMU hit the ${LIMIT}s limit (hang?)"

# 7b. The iSCSI stage on the host: stop the target (SIGTERM; 10 s grace, then SIGKILL) and check it exited
# cleanly, then open the guest's copies from the MO image itself and compare them with the publisher's files.
if [ -n "$TPID" ]; then
  ts=$(ms)
  if kill -0 $TPID 2>/dev/null; then
    kill -TERM $TPID
    for _ in $(seq 100); do kill -0 $TPID 2>/dev/null || break; sleep 0.1; done
    TEXIT=0
    if kill -0 $TPID 2>/dev/null; then kill -KILL $TPID; wait $TPID 2>/dev/null || true; TEXIT='"killed after 10 s"'; else wait $TPID || TEXIT=$?; fi
  else
    rc=0; wait $TPID || rc=$?
    TEXIT="\"gone before SIGTERM (exit $rc)\""
  fi
  TPID=""
  STOP_MS=$(( $(ms) - ts ))
  log "iSCSI target stopped in ${STOP_MS} ms (exit $TEXIT)"
  cat > iscsi-state.json <<JSON
{"cli":"$ROOT/dist/cli/main.js","image":"$W/media/iscsi-mo.img","stationKey":"$W/rootfs/data/station.key",
 "targetLog":"$W/iscsi-target.log","targetErr":"$W/iscsi-target.err","targetExit":$TEXIT,"initiator":"$ISCSI_INITIATOR",
 "consoleLog":"$W/console.log","work":"$W/media","readyMs":$READY_MS,"stopMs":$STOP_MS,
 "copies":[{"contentId":"HIL-MO-A","scheme":"a","file":"$W/rootfs/data/HIL-MO-A.bin"},{"contentId":"HIL-MO-B","scheme":"b","file":"$W/rootfs/data/HIL-MO-B.bin"}]}
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
node "$ROOT/dist/hil/virtual/summarize.js" "$W/console.log" "$W/emulator.log" "$W/crosscheck.md" ${TEXIT+"$W/iscsi-host.log"}
