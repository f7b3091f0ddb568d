#!/usr/bin/env bash
# The typed-API benchmarks on the real Linux 7.3 kernel: builds, compiles the C baselines on the
# host (the guest sees the checkout read-only), then runs every bench/api-*.js in the lab guest on
# the edu machine and the NVMe bench (bench/nvme-io.js, the example driver against bench/c/nvme-io.c)
# on the nvme machine, in noiommu and in IOMMU mode. Each bench prints its own ratios against C
# measured in the same run.
#
#   scripts/lab/bench.sh [noiommu|iommu ...]      (default: both modes)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
modes=("$@")
[[ ${#modes[@]} -gt 0 ]] || modes=(noiommu iommu)
npm run build --silent
for program in ioctl-loop mmio-loop get-pa-walk nvme-io; do
  node -e "require('./dist/bench/native-c.js').compileC(process.argv[1])" "$program"
done
for mode in "${modes[@]}"; do
  echo "=== bench in the lab, $mode mode"
  bash scripts/lab/run.sh "$mode" --timeout 1800 -- \
    sh -c 'status=0; for b in dist/bench/api-*.js; do case $b in *support*) continue ;; esac; node "$b" || status=1; done; exit $status'
  echo "=== NVMe bench in the lab, $mode mode"
  bash scripts/lab/run.sh "$mode" --machine nvme --timeout 1800 -- node dist/bench/nvme-io.js
done
