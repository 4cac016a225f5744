#!/usr/bin/env bash
# Installs every system tool mocopy's tests, rigs and builds use, from Debian/Ubuntu packages (run as root).
# `npm test` runs without them (the suites that need one are listed as not run); .ci/run installs them all.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
  build-essential python3 cmake            # the addon (node-gyp, cmake-js)
  g++-mingw-w64-x86-64 wine64 file         # the Windows backend: linked with mingw-w64, its tests run under Wine
  xorriso genisoimage                      # masters checked by foreign ISO 9660 tools
  time                                     # GNU time: peak RSS of a CLI run (hostile master test)
  libiscsi-bin tgt                         # a foreign iSCSI initiator and conformance suite; Linux's tgt as the reference target
  tmux                                     # a real terminal for the station screen test
  qemu-block-extra                         # QEMU's iSCSI block driver: the guest's kernel drives our served MO
  qemu-system-x86 busybox-static cpio gzip xz-utils binutils libc6-dev sg3-utils   # the virtual HIL rig
  openssl                                  # TLS certificates for the HTTPS center tests
  postgresql                               # the center's PostgreSQL ledger: tests start their own servers (initdb + pg_ctl)
  python3-cryptography                     # the second station client (clients/python), written from docs/protocol.md
  prometheus nginx-light                   # the operable center: a real Prometheus scrapes it, a real nginx balances a rolling restart
  chromium                                 # the operators' console tested in a real browser (playwright-core drives it)
)
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
echo "setup-system: installed ${PACKAGES[*]}"
