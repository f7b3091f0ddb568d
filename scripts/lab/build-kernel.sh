#!/usr/bin/env bash
# Builds the lab kernel for one variant (group: group + cdev; nullgroup: cdev only) and caches the
# bzImage keyed on the source version and the config fragments, so it is rebuilt only when they change.
# Prints the path of the bzImage on stdout.
source "$(dirname "$0")/common.sh"
# The body is one block, so bash reads it whole before running: editing this file while a long
# run is under way cannot change what that run does.
{
lab_ensure_packages
variant=${1:-group}
[ -f "$LAB_DIR/kernel/$variant.config" ] || lab_die "unknown kernel variant '$variant' (have: $(cd "$LAB_DIR/kernel" && ls *.config | sed 's/\.config//' | grep -v base | tr '\n' ' '))"
KSRC=$LAB_CACHE/src/linux-source-$KERNEL_SERIES
[ -f "$KSRC/.done" ] || bash "$LAB_DIR/fetch.sh"

out=$(lab_kernel_dir "$variant")
if [ -f "$out/bzImage" ]; then
  lab_log "kernel '$variant' cached ($out)"
  echo "$out/bzImage"; exit 0
fi

# One build per variant at a time: a second caller waits for the first and then uses its result.
exec 8>"$LAB_CACHE/build-$variant.lock"
if ! flock -n 8; then
  lab_log "another build of kernel '$variant' is running; waiting for it"
  flock 8
fi
if [ -f "$out/bzImage" ]; then
  lab_log "kernel '$variant' built by the other caller ($out)"
  echo "$out/bzImage"; exit 0
fi

build=$LAB_CACHE/build-$variant
rm -rf "$build" && mkdir -p "$build"
lab_log "configuring kernel '$variant' (tinyconfig + base + $variant fragments)"
make -C "$KSRC" O="$build" tinyconfig >"$build/config.log" 2>&1
KCONFIG_CONFIG=$build/.config "$KSRC/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" \
  "$LAB_DIR/kernel/base.config" "$LAB_DIR/kernel/$variant.config" >>"$build/config.log" 2>&1
make -C "$KSRC" O="$build" olddefconfig >>"$build/config.log" 2>&1
for opt in IOMMUFD IOMMUFD_NOIOMMU VFIO_DEVICE_CDEV VFIO_NOIOMMU VFIO_PCI PCI_IOV HOTPLUG_PCI_PCIE PCIEAER PCIEAER_INJECT; do
  grep -q "^CONFIG_$opt=y" "$build/.config" || lab_die "CONFIG_$opt is not =y after olddefconfig (see $build/config.log)"
done
# The variant's own choices must survive olddefconfig, or the kernel would not be the row it claims.
while IFS='=' read -r opt value; do
  case "$value" in
    y) grep -q "^$opt=y\$" "$build/.config" || lab_die "$opt=y of variant '$variant' did not survive olddefconfig" ;;
    n) ! grep -q "^$opt=" "$build/.config" || lab_die "$opt=n of variant '$variant' did not survive olddefconfig" ;;
  esac
done < <(grep '^CONFIG_' "$LAB_DIR/kernel/$variant.config")
lab_log "building kernel '$variant' with $(nproc) jobs (about 10 minutes on 2 cores; log: $build/build.log)"
if ! lab_with_progress "kernel build" "$build/build.log" make -C "$KSRC" O="$build" -j"$(nproc)" bzImage; then
  tail -40 "$build/build.log" >&2; lab_die "kernel build failed"
fi
mkdir -p "$out"
cp "$build/.config" "$out/config"
# Copied under another name first: a cache entry is either whole or absent.
cp "$build/arch/x86/boot/bzImage" "$out/bzImage.tmp"
mv "$out/bzImage.tmp" "$out/bzImage"
rm -rf "$build"
lab_log "kernel '$variant' ready: $out/bzImage ($(du -h "$out/bzImage" | cut -f1))"
echo "$out/bzImage"
exit
}
