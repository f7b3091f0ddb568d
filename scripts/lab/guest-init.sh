#!/bin/busybox sh
# /init of the lab guest (busybox only). It prepares the real kernel for a test run and runs one job:
#   1. mounts proc, sysfs, devtmpfs and the run's writable 9p share (tag "labrun") at /lab;
#   2. binds the machine's devices (the vendor:device IDs in /lab/bind-ids) to vfio-pci;
#   3. mounts the host's root read-only (tag "hostroot") at /host, with the guest's own proc, sysfs,
#      devtmpfs and a tmpfs /tmp on top, and the run share again at its host path;
#   4. runs the job script the host wrote into the run directory, with the host's /bin/sh inside
#      `chroot /host`, its output both on the serial console and in /lab/output.log;
#   5. records the exit status, timings and the kernel log, and powers off.
# Whatever goes wrong, the guest powers off: a missing /lab/status tells the host the run failed.

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

centis() { read -r up _ </proc/uptime; echo "${up%.*}${up#*.}"; }
seconds() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }
T_INIT=$(centis)
say() {
  echo "lab: $*"
  [ -d /lab/. ] && [ -f /lab/job.sh ] && echo "lab: $*" >>/lab/guest.log
}
finish() {
  dmesg >/lab/kernel.log 2>/dev/null
  sync
  say "powering off at $(seconds "$(centis)") s"
  poweroff -f
  sleep 5
}
setup_failed() {
  say "setup error: $*"
  echo "$*" >/lab/setup-error
  finish
}

say "init started at $(seconds "$T_INIT") s of kernel uptime"
mkdir -p /lab /host
if ! mount -t 9p -o trans=virtio,version=9p2000.L,cache=none labrun /lab; then
  echo "lab: setup error: cannot mount the run share (tag labrun)"
  poweroff -f
fi
[ -f /lab/job.sh ] && [ -f /lab/host-path ] || { echo "lab: setup error: the run share has no job.sh/host-path"; poweroff -f; }
echo "init_seconds=$(seconds "$T_INIT")" >/lab/timing
read -r HOST_RUN_DIR </lab/host-path

# The machine's devices to hand to vfio-pci: /lab/bind-ids lists vendor:device IDs; every function
# with one of them is bound, in bus order, and the job sees them as NODE_VFIO_BDFS.
[ -f /lab/bind-ids ] || setup_failed "the run share has no bind-ids"
BDFS=
for dev in /sys/bus/pci/devices/*; do
  id="$(cat "$dev/vendor"):$(cat "$dev/device")"
  id=$(echo "$id" | sed 's/0x//g')
  grep -qx "$id" /lab/bind-ids && BDFS="$BDFS ${dev##*/}"
done
BDFS=${BDFS# }
[ -n "$BDFS" ] || setup_failed "none of the devices $(tr '\n' ' ' </lab/bind-ids)is on the PCI bus"
BDF=${BDFS%% *}
noiommu=$(cat /sys/module/vfio/parameters/enable_unsafe_noiommu_mode 2>/dev/null || echo absent)
say "devices to bind: $BDFS; vfio.enable_unsafe_noiommu_mode=$noiommu"
for bdf in $BDFS; do
  echo vfio-pci >"/sys/bus/pci/devices/$bdf/driver_override" || setup_failed "cannot write driver_override of $bdf"
  echo "$bdf" >/sys/bus/pci/drivers_probe || setup_failed "drivers_probe of $bdf failed"
  driver=$(readlink "/sys/bus/pci/devices/$bdf/driver")
  [ "${driver##*/}" = vfio-pci ] || setup_failed "$bdf is bound to '${driver##*/}', not vfio-pci"
  say "$bdf bound to vfio-pci; vfio-dev: $(ls "/sys/bus/pci/devices/$bdf/vfio-dev" 2>/dev/null | tr '\n' ' ')"
done
say "/dev/vfio: $(ls /dev/vfio 2>/dev/null | tr '\n' ' ') /dev/vfio/devices: $(ls /dev/vfio/devices 2>/dev/null | tr '\n' ' ')"

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host \
  || setup_failed "cannot mount the host root (tag hostroot)"
mount -t proc proc /host/proc || setup_failed "cannot mount /host/proc"
mount -t sysfs sysfs /host/sys || setup_failed "cannot mount /host/sys"
mount -t devtmpfs devtmpfs /host/dev || setup_failed "cannot mount /host/dev"
# A checkout under the host's /tmp would vanish under the guest's tmpfs: keep it visible.
PROJECT=$(cat /lab/project-path 2>/dev/null || true)
case "$PROJECT" in
  /tmp/*)
    mkdir -p /keep && mount -o bind "/host$PROJECT" /keep || setup_failed "cannot hold on to $PROJECT"
    mount -t tmpfs -o mode=1777 tmpfs /host/tmp || setup_failed "cannot mount /host/tmp"
    mkdir -p "/host$PROJECT" && mount -o bind /keep "/host$PROJECT" || setup_failed "cannot expose $PROJECT again"
    ;;
  *) mount -t tmpfs -o mode=1777 tmpfs /host/tmp || setup_failed "cannot mount /host/tmp" ;;
esac
mkdir -p /host/dev/shm /host/dev/pts /host/dev/hugepages
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
mount -t devpts devpts /host/dev/pts 2>/dev/null
mount -t hugetlbfs hugetlbfs /host/dev/hugepages 2>/dev/null
[ -d "/host$HOST_RUN_DIR" ] || mkdir -p "/host$HOST_RUN_DIR" 2>/dev/null
mount -o bind /lab "/host$HOST_RUN_DIR" || setup_failed "cannot mount the run share at $HOST_RUN_DIR"

T_START=$(centis)
say "running the job at $(seconds "$T_START") s"
(
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp TERM=dumb LANG=C.UTF-8 \
    NODE_VFIO_BDF="$BDF" NODE_VFIO_BDFS="$BDFS" NODE_VFIO_LAB_RESULTS="$HOST_RUN_DIR" NODE_VFIO_LAB_COMMAND_START="$(seconds "$T_START")" \
    chroot /host /bin/sh "$HOST_RUN_DIR/job.sh"
  echo $? >/lab/status.tmp
) 2>&1 | tee /lab/output.log
T_END=$(centis)
status=$(cat /lab/status.tmp 2>/dev/null || echo 255)
echo "command_seconds=$(seconds $((T_END - T_START)))" >>/lab/timing
say "command exited with status $status after $(seconds $((T_END - T_START))) s"
mv /lab/status.tmp /lab/status
finish
