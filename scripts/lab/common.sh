# Shared settings for the lab scripts. Sourced, not run.
# The lab builds a real Linux 7.3 kernel (Debian experimental's source package, which carries the
# merged noiommu cdev series) and boots it under QEMU with QEMU's edu DMA device.
set -euo pipefail
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT_DIR=$(cd "$LAB_DIR/../.." && pwd)
LAB_CACHE=${NODE_VFIO_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/node-vfio-lab}
KERNEL_PKG_VERSION=${KERNEL_PKG_VERSION:-7.3~rc7-1~exp1}
KERNEL_SERIES=7.3
# Debian packages the lab needs on the host: QEMU with the edu device, a static busybox for the
# initramfs, and what a kernel build needs beyond a C compiler and make.
LAB_APT_PACKAGES=(qemu-system-x86 busybox-static flex bison bc libelf-dev libssl-dev cpio gcc make libc6-dev xz-utils util-linux)
mkdir -p "$LAB_CACHE"

# Progress goes to the console even when a caller redirects the command's own output to a log:
# fd 9 is a copy of the stderr the script started with.
exec 9>&2
lab_log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&9; }
lab_die() { lab_log "error: $*"; exit 1; }

# lab_with_progress WHAT LOGFILE COMMAND...: runs COMMAND with its output in LOGFILE and prints a
# heartbeat every 30 s with the elapsed time and the log's last line (what it is working on), so a
# long step never looks hung in a CI log.
lab_with_progress() {
  local what=$1 log=$2; shift 2
  local start=$SECONDS rc=0
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    local waited=0
    while [ $waited -lt 30 ] && kill -0 "$pid" 2>/dev/null; do sleep 1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      lab_log "$what: running for $((SECONDS - start)) s; now: $(tail -n 1 "$log" 2>/dev/null | cut -c1-100)"
    fi
  done
  wait "$pid" || rc=$?
  lab_log "$what: finished in $((SECONDS - start)) s (exit $rc)"
  return $rc
}

# Installs the lab's Debian packages that are missing (CI may start from a bare machine).
lab_ensure_packages() {
  # Checked once per lab command: the scripts it starts inherit the answer.
  [ "${NODE_VFIO_LAB_PACKAGES_OK:-}" = 1 ] && return 0
  local missing=() p
  for p in "${LAB_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then export NODE_VFIO_LAB_PACKAGES_OK=1; return 0; fi
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  lab_log "installing missing packages: ${missing[*]}"
  lab_with_progress "apt-get update" "$LAB_CACHE/apt-update.log" "${sudo[@]}" apt-get update \
    || { tail -20 "$LAB_CACHE/apt-update.log" >&9; lab_die "apt-get update failed"; }
  lab_with_progress "apt-get install" "$LAB_CACHE/apt-install.log" \
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
    || { tail -20 "$LAB_CACHE/apt-install.log" >&9; lab_die "apt-get install failed"; }
  export NODE_VFIO_LAB_PACKAGES_OK=1
}

# The cache directory of a kernel variant's build: keyed on the source version and the config
# fragments, so changing either builds anew.
lab_kernel_dir() {
  local key
  key=$( (echo "$KERNEL_PKG_VERSION"; cat "$LAB_DIR/kernel/base.config" "$LAB_DIR/kernel/$1.config") | sha256sum | cut -c1-16)
  echo "$LAB_CACHE/kernels/$1-$key"
}

# Quotes a string for a POSIX shell (the guest runs the job with the host's /bin/sh).
lab_sh_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
