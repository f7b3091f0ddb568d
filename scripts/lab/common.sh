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

# lab_choose_accel KERNEL: sets LAB_ACCEL (kvm or tcg) and LAB_ACCEL_WHY. A /dev/kvm that is there
# and read-write can still hang every guest without a byte of console output (seen on these
# machines), so KVM is used only after a short boot under it has printed the kernel's banner.
# NODE_VFIO_LAB_ACCEL=tcg|kvm skips the probe; lab.sh exports the answer so its runs probe once.
lab_choose_accel() {
  local kernel=$1
  case "${NODE_VFIO_LAB_ACCEL:-auto}" in
    tcg | kvm) LAB_ACCEL=$NODE_VFIO_LAB_ACCEL; LAB_ACCEL_WHY=${NODE_VFIO_LAB_ACCEL_WHY:-"NODE_VFIO_LAB_ACCEL=$NODE_VFIO_LAB_ACCEL"}; return 0 ;;
    auto) ;;
    *) lab_die "NODE_VFIO_LAB_ACCEL must be auto, tcg or kvm, not '$NODE_VFIO_LAB_ACCEL'" ;;
  esac
  if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    LAB_ACCEL=tcg; LAB_ACCEL_WHY="no read-write /dev/kvm"; return 0
  fi
  local probe_s=${NODE_VFIO_LAB_KVM_PROBE_SECONDS:-20} out
  # No initrd: the kernel prints its banner, fails to mount a root and powers off (panic=-1, -no-reboot).
  out=$(timeout -k 5 "$probe_s" qemu-system-x86_64 -M q35 -accel kvm -cpu max -m 256M -display none \
    -monitor none -serial stdio -no-reboot -kernel "$kernel" -append "console=ttyS0 panic=-1" </dev/null 2>&1 | head -c 65536 || true)
  if grep -q 'Linux version' <<<"$out"; then
    LAB_ACCEL=kvm; LAB_ACCEL_WHY="a ${probe_s} s probe boot under KVM printed the kernel banner"
  else
    LAB_ACCEL=tcg; LAB_ACCEL_WHY="/dev/kvm is read-write but a ${probe_s} s probe boot under KVM printed no kernel banner"
  fi
}

# The lab machines: which QEMU devices a guest has and which of them the guest binds to vfio-pci
# before the job runs. lab_machine NAME RESULTS_DIR sets LAB_MACHINE_ARGS (QEMU arguments) and
# LAB_MACHINE_BIND (vendor:device IDs; every function with one of them is bound, in bus order) and
# LAB_MACHINE_TESTS (the compiled test files that apply to the machine, for scripts/test.mjs) and
# LAB_MACHINE_APPEND (kernel command line words of the machine's own).
#   edu    QEMU's edu (one 32-bit BAR, MSI, no reset): the first lab machine, unchanged
#   nvme   QEMU's NVMe controller over a fresh 64 MiB raw image: MSI-X with its table and PBA in
#          BAR0 (64-bit), PCIe and PM capabilities, FLR
#   multi  two edu functions of one slot, and a third edu behind a PCIe root port, whose
#          secondary bus can be reset (VFIO_DEVICE_PCI_HOT_RESET)
#   sriov  QEMU's NVMe controller as an SR-IOV PF (sriov_max_vfs=2; QEMU 7.2 wants an nvme-subsys,
#          the namespace as an nvme-ns, and flexible queue/interrupt resources for the VFs): VFs
#          appear at 00:04.1 and 00:04.2 when sriov_numvfs is written (CONFIG_PCI_IOV)
#   hotplug three edu functions behind three PCIe root ports whose slots pciehp drives: the
#          hot-unplug cases (CONFIG_HOTPLUG_PCI_PCIE), one function each
LAB_MACHINES=(edu nvme multi sriov hotplug nvme-port)
lab_machine() {
  local name=$1 results=$2
  local edu=edu,dma_mask=0xffffffffffffffff
  LAB_MACHINE_APPEND=
  case "$name" in
    edu)
      LAB_MACHINE_ARGS=(-device "$edu")
      LAB_MACHINE_BIND=(1234:11e8)
      # One 1 GiB huge page, reserved at boot (a running kernel this small cannot find 1 GiB of
      # contiguous memory), for the kernel selftests' dma_map_unmap of a whole 1 GiB page; half
      # the guest's 2 GiB, so only this machine has it.
      LAB_MACHINE_APPEND="hugepagesz=1G hugepages=1"
      # The typed-API suites drive edu; the lab's own edu suites are the top-level ones.
      LAB_MACHINE_TESTS=('dist/test/lab/*.test.js' 'dist/test/api/**/*.test.js') ;;
    nvme)
      # A new image per run: the controller's namespace starts as zeroes every time.
      mkdir -p "$results" && rm -f "$results/nvme.img"
      truncate -s 64M "$results/nvme.img"
      LAB_MACHINE_ARGS=(-drive "file=$results/nvme.img,if=none,id=nvm0,format=raw,cache=writeback"
        -device "nvme,serial=nodevfio0001,drive=nvm0,addr=0x4")
      LAB_MACHINE_BIND=(1b36:0010)
      LAB_MACHINE_TESTS=('dist/test/lab/devices/*.test.js' 'dist/test/lab/nvme/*.test.js') ;;
    sriov)
      mkdir -p "$results" && rm -f "$results/nvme.img"
      truncate -s 64M "$results/nvme.img"
      LAB_MACHINE_ARGS=(-drive "file=$results/nvme.img,if=none,id=nvm0,format=raw,cache=writeback"
        -device nvme-subsys,id=nvmesubsys0
        -device "nvme,id=nvme0,serial=nodevfio0001,subsys=nvmesubsys0,addr=0x4,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2"
        -device nvme-ns,drive=nvm0,bus=nvme0,nsid=1)
      LAB_MACHINE_BIND=(1b36:0010)
      LAB_MACHINE_TESTS=('dist/test/lab/sriov/*.test.js') ;;
    multi)
      LAB_MACHINE_ARGS=(-device "$edu,addr=0x5.0,multifunction=on" -device "$edu,addr=0x5.1"
        -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=0x6 -device "$edu,bus=rp1")
      LAB_MACHINE_BIND=(1234:11e8)
      LAB_MACHINE_TESTS=('dist/test/lab/devices/*.test.js' 'dist/test/lab/multi/*.test.js') ;;
    hotplug)
      # Three edu functions, each behind a pcie-root-port of its own with a hotplug slot. QEMU 7.2's
      # q35 keeps bridge hotplug to ACPI, whose _OSC then denies the kernel PCIe native hotplug; with
      # that off, pciehp drives the slots. Powering a slot off makes QEMU delete its device for good,
      # so each hot-unplug case takes a function of its own.
      LAB_MACHINE_ARGS=(-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off
        -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=0x5 -device "$edu,bus=rp1"
        -device pcie-root-port,id=rp2,chassis=2,slot=2,addr=0x6 -device "$edu,bus=rp2"
        -device pcie-root-port,id=rp3,chassis=3,slot=3,addr=0x7 -device "$edu,bus=rp3")
      LAB_MACHINE_BIND=(1234:11e8)
      LAB_MACHINE_TESTS=('dist/test/lab/hotplug/*.test.js') ;;
    nvme-port)
      # QEMU's NVMe controller behind a pcie-root-port (AER, a hotplug slot pciehp drives: ACPI
      # bridge hotplug off as on the hotplug machine), for the example driver's platform faults.
      mkdir -p "$results" && rm -f "$results/nvme.img"
      truncate -s 64M "$results/nvme.img"
      LAB_MACHINE_ARGS=(-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off
        -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=0x5
        -drive "file=$results/nvme.img,if=none,id=nvm0,format=raw,cache=writeback"
        -device "nvme,serial=nodevfio0001,drive=nvm0,bus=rp1")
      LAB_MACHINE_BIND=(1b36:0010)
      LAB_MACHINE_TESTS=('dist/test/lab/nvme-port/*.test.js') ;;
    *) lab_die "unknown lab machine '$name' (have: ${LAB_MACHINES[*]})" ;;
  esac
}
