#!/usr/bin/env bash
# Downloads the Linux 7.3 source and uapi headers from Debian experimental into the lab cache,
# using a private apt state directory so the machine's own apt configuration is never changed.
# Prints nothing but progress; idempotent (a finished download is kept).
# --headers-only: just the uapi headers (2 MB), for the struct layout check.
source "$(dirname "$0")/common.sh"
headers_only=false
[ "${1:-}" = "--headers-only" ] && headers_only=true
# The headers need only apt and dpkg; the kernel source needs xz to unpack (and the tools to build).
$headers_only || lab_ensure_packages

APT_DIR=$LAB_CACHE/apt
DEB_DIR=$LAB_CACHE/debs
mkdir -p "$APT_DIR/lists/partial" "$DEB_DIR"

# The mirror the machine already uses; its host name is read at run time, never written down.
mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\/debian\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1)
[ -n "$mirror" ] || lab_die "cannot find the configured Debian mirror in /etc/apt"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror experimental main" > "$APT_DIR/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$APT_DIR/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache::archives=$DEB_DIR")

have() { ls "$DEB_DIR"/"$1"_*.deb >/dev/null 2>&1; }
wanted=("linux-libc-dev=$KERNEL_PKG_VERSION")
$headers_only || wanted+=("linux-source-$KERNEL_SERIES=$KERNEL_PKG_VERSION")
if ! have linux-libc-dev || { ! $headers_only && ! have linux-source-$KERNEL_SERIES; }; then
  lab_log "fetching the experimental package list (private apt state in $APT_DIR)"
  apt-get "${apt_opts[@]}" update >"$APT_DIR/update.log" 2>&1 || { cat "$APT_DIR/update.log"; lab_die "apt-get update failed"; }
  lab_log "downloading ${wanted[*]}"
  (cd "$DEB_DIR" && lab_with_progress "download" "$APT_DIR/download.log" apt-get "${apt_opts[@]}" download "${wanted[@]}") \
    || { tail -20 "$APT_DIR/download.log" >&2; lab_die "download failed"; }
fi

if [ ! -f "$LAB_CACHE/headers/.done" ]; then
  rm -rf "$LAB_CACHE/headers" && mkdir -p "$LAB_CACHE/headers"
  dpkg-deb -x "$DEB_DIR"/linux-libc-dev_*.deb "$LAB_CACHE/headers"
  touch "$LAB_CACHE/headers/.done"
  lab_log "uapi headers in $LAB_CACHE/headers/usr/include"
fi

$headers_only && exit 0
KSRC=$LAB_CACHE/src/linux-source-$KERNEL_SERIES
if [ ! -f "$KSRC/.done" ]; then
  rm -rf "$LAB_CACHE/src" "$LAB_CACHE/srcdeb" && mkdir -p "$LAB_CACHE/src" "$LAB_CACHE/srcdeb"
  dpkg-deb -x "$DEB_DIR"/linux-source-${KERNEL_SERIES}_*.deb "$LAB_CACHE/srcdeb"
  lab_with_progress "unpacking the kernel source" "$LAB_CACHE/unpack.log" tar -C "$LAB_CACHE/src" -xf "$LAB_CACHE/srcdeb/usr/src/linux-source-$KERNEL_SERIES.tar.xz"
  rm -rf "$LAB_CACHE/srcdeb"
  touch "$KSRC/.done"
  lab_log "kernel source in $KSRC"
fi
