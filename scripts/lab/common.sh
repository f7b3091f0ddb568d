# Shared settings for the lab scripts. Sourced, not run.
# The lab builds a real Linux 7.3 kernel (Debian experimental's source package, which carries the
# merged noiommu cdev series) and boots it under QEMU with QEMU's edu DMA device.
set -euo pipefail
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT_DIR=$(cd "$LAB_DIR/../.." && pwd)
LAB_CACHE=${NODE_VFIO_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/node-vfio-lab}
KERNEL_PKG_VERSION=${KERNEL_PKG_VERSION:-7.3~rc7-1~exp1}
KERNEL_SERIES=7.3
mkdir -p "$LAB_CACHE"

lab_log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
lab_die() { lab_log "error: $*"; exit 1; }

# Runs a long command, printing a heartbeat with the elapsed time so a CI log never looks hung.
lab_with_progress() {
  local what=$1; shift
  local start=$SECONDS
  "$@" & local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && lab_log "$what: still running, $((SECONDS - start)) s elapsed"
  done
  wait "$pid"; local rc=$?
  lab_log "$what: finished in $((SECONDS - start)) s (exit $rc)"
  return $rc
}
