#!/usr/bin/env bash
# Builds the lab guest's initramfs: a static busybox and guest-init.sh as /init. Cached, keyed on the
# init script and the busybox binary. Prints the path of the gzip'd cpio archive on stdout.
source "$(dirname "$0")/common.sh"
lab_ensure_packages
busybox=/bin/busybox
# The guest has no libc: the busybox must be the statically linked one.
[[ $(LC_ALL=C ldd "$busybox" 2>&1) == *"not a dynamic executable"* ]] || lab_die "$busybox is not statically linked (install busybox-static)"

key=$(cat "$LAB_DIR/guest-init.sh" "$busybox" | sha256sum | cut -c1-16)
out=$LAB_CACHE/initramfs/initramfs-$key.cpio.gz
if [ ! -f "$out" ]; then
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,host,lab}
  cp "$busybox" "$stage/bin/busybox"
  cp "$LAB_DIR/guest-init.sh" "$stage/init"
  chmod 755 "$stage/init" "$stage/bin/busybox"
  mkdir -p "$(dirname "$out")"
  (cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet | gzip -9 >"$out.tmp")
  mv "$out.tmp" "$out"
  lab_log "initramfs built: $out ($(du -h "$out" | cut -f1))"
fi
echo "$out"
