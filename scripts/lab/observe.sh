#!/bin/sh
# Run inside a lab guest (scripts/lab/run.sh MODE --machine M -- sh scripts/lab/observe.sh): prints
# what the real kernel shows of each device bound for the job — sysfs attributes, the whole config
# space, the IOMMU group and VFIO nodes, and `vfio info --json` — so a model of the machine can be
# held against it. Output is plain text sections, one per device.
for bdf in $NODE_VFIO_BDFS; do
  d=/sys/bus/pci/devices/$bdf
  echo "=== $bdf"
  for a in vendor device subsystem_vendor subsystem_device class revision irq reset_method \
           dma_mask_bits consistent_dma_mask_bits msi_bus numa_node; do
    [ -r "$d/$a" ] && echo "$a: $(cat "$d/$a" 2>&1)"
  done
  echo "resource:"; cat "$d/resource"
  echo "iommu_group: $(readlink "$d/iommu_group" 2>/dev/null || echo none)"
  echo "vfio-dev: $(ls "$d/vfio-dev" 2>/dev/null | tr '\n' ' ')"
  echo "parent: $(readlink -f "$d/.." )"
  echo "config ($(wc -c <"$d/config") bytes):"
  od -A x -t x1 -v "$d/config" | grep -v '^[0-9a-f]*\( 00\)\{16\}$' || true
  echo "vfio info:"
  node dist/lib/cli/main.js info "$bdf" --json 2>&1
done
echo "=== /dev/vfio: $(ls /dev/vfio | tr '\n' ' ')"
echo "=== /dev/vfio/devices: $(ls /dev/vfio/devices | tr '\n' ' ')"
ls -l /dev/vfio/devices/ /dev/vfio/ 2>&1
for g in /sys/kernel/iommu_groups/*; do [ -d "$g" ] && echo "group ${g##*/}: $(ls "$g/devices" | tr '\n' ' ')"; done
echo "=== PCI functions:"
for d in /sys/bus/pci/devices/*; do
  drv=$(readlink "$d/driver" 2>/dev/null); echo "${d##*/} $(cat "$d/vendor"):$(cat "$d/device") class $(cat "$d/class") driver ${drv##*/}"
done
# What `vfio status` reads to mark a device *Active*: boot_vga of the VGA functions, the network
# interfaces with their parent and state, the disks, the mounts.
echo "=== host use:"
for d in /sys/bus/pci/devices/*; do [ -r "$d/boot_vga" ] && echo "${d##*/} boot_vga: $(cat "$d/boot_vga")"; done
for n in /sys/class/net/*; do
  echo "net ${n##*/} -> $(readlink "$n") flags $(cat "$n/flags") operstate $(cat "$n/operstate") ifindex $(cat "$n/ifindex")"
done
for b in /sys/block/*; do [ -e "$b" ] && echo "block ${b##*/} -> $(readlink "$b")"; done
echo "mounts:"; cat /proc/mounts
echo "swaps:"; cat /proc/swaps
