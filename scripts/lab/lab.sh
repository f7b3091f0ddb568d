#!/usr/bin/env bash
# The real-kernel lab in one command (`npm run test:lab`): installs what is missing, builds the
# project, fetches and builds the Linux 7.3 lab kernels (cached), then runs the lab tests
# (dist/test/lab) in a QEMU guest per run, and prints a summary. Arguments after `--` go to
# scripts/test.mjs (for example `-- --grep=smoke`).
#
# Runs, as MODE:KERNEL[:MACHINE] words in NODE_VFIO_LAB_RUNS (default below): MODE is noiommu or
# iommu, KERNEL is group (group + cdev) or nullgroup (cdev only), MACHINE one of LAB_MACHINES in
# common.sh (default edu). A run whose kernel is not cached yet is
# skipped (and said so) when building it would pass NODE_VFIO_LAB_BUDGET_MINUTES (default 40) since
# the start; the group kernel is always built. NODE_VFIO_LAB_TIMEOUT bounds each guest (seconds).
source "$(dirname "$0")/common.sh"
# The body is one block, so bash reads it whole before running: editing this file while a long
# run is under way cannot change what that run does.
{
[ "${1:-}" = -- ] && shift
test_args=("$@")
# The edu machine on every kernel and mode it was first checked on; the nvme and multi machines on
# the group kernel in both modes (their cases need no null-group variant: the cdev path is the same);
# the sriov machine likewise (its cases cover the cdev and the group path in the same run), and
# also on the null-group kernel in noiommu mode, as edu is: there the VF token must work through
# the cdev alone and the group-path cases skip (no /dev/vfio/vfio), about 40 s under TCG; and the
# hotplug and nvme-port machines (pciehp and AER are the same for either kernel).
runs=(${NODE_VFIO_LAB_RUNS:-noiommu:group iommu:group noiommu:nullgroup noiommu:group:nvme iommu:group:nvme noiommu:group:multi iommu:group:multi noiommu:group:sriov iommu:group:sriov noiommu:nullgroup:sriov noiommu:group:hotplug iommu:group:hotplug noiommu:group:nvme-port iommu:group:nvme-port})
budget_s=$(( ${NODE_VFIO_LAB_BUDGET_MINUTES:-40} * 60 ))
# How long building a kernel is expected to take: about 12 minutes on 2 quiet cores, or as long as
# the group kernel took in this run when it had to be built (a busy machine builds slower).
kernel_build_estimate_s=$(( 15 * 60 ))
lab_start=$SECONDS

lab_ensure_packages
cd "$PROJECT_DIR"
if [ ! -d node_modules ]; then
  lab_with_progress "npm ci" "$LAB_CACHE/npm-ci.log" npm ci --no-audit --no-fund \
    || { tail -30 "$LAB_CACHE/npm-ci.log" >&2; lab_die "npm ci failed"; }
fi
# The native addon is normally built by npm's install step; build it if this checkout lacks it.
if [ -f binding.gyp ] && ! compgen -G 'build/Release/*.node' >/dev/null; then
  lab_with_progress "native addon build" "$LAB_CACHE/addon-build.log" npm run build:native \
    || { tail -30 "$LAB_CACHE/addon-build.log" >&2; lab_die "building the native addon failed"; }
fi
# tsc rewrites every output, so dist is current when no source is newer than one of its files
# (CI has just built it for the model tests).
if [ ! -f dist/lib/index.js ] \
   || [ -n "$(find lib tools test bench examples tsconfig.json package.json -newer dist/lib/index.js \( -name '*.ts' -o -name '*.json' \) -print -quit 2>/dev/null)" ]; then
  lab_with_progress "TypeScript build" "$LAB_CACHE/tsc.log" npm run build \
    || { tail -30 "$LAB_CACHE/tsc.log" >&2; lab_die "npm run build failed"; }
else
  lab_log "dist is up to date with the TypeScript sources"
fi
compgen -G 'dist/test/lab/*.test.js' >/dev/null || lab_die "no lab tests in dist/test/lab after the build"

bash "$LAB_DIR/fetch.sh"
kernel_cached() { [ -f "$(lab_kernel_dir "$1")/bzImage" ]; }

if ! kernel_cached group; then
  build_start=$SECONDS
  bash "$LAB_DIR/build-kernel.sh" group >/dev/null
  kernel_build_estimate_s=$(( SECONDS - build_start ))
fi

lab_choose_accel "$(lab_kernel_dir group)/bzImage"
export NODE_VFIO_LAB_ACCEL=$LAB_ACCEL NODE_VFIO_LAB_ACCEL_WHY=$LAB_ACCEL_WHY
lab_log "accelerator for every run: $LAB_ACCEL ($LAB_ACCEL_WHY)"

stamp=$(date +%Y%m%d-%H%M%S)
# Results of earlier runs: keep the last few for comparison, not all of them.
if [ -d "$PROJECT_DIR/.lab-results" ]; then
  ls -1dt "$PROJECT_DIR/.lab-results"/*/ 2>/dev/null | tail -n +10 | xargs -r rm -rf --
fi
summary=()
failures=0
failed_logs=()
crashes=()
# One boot of $machine in $mode on $variant; sets rc and counts (mocha's closing line, or empty).
run_machine() {
  local results=$1
  rc=0
  # The machine's lab suites (for edu also the typed-API suites, on their real-kernel target only:
  # their model targets already ran on the host).
  lab_machine "$machine" "$results"
  bash "$LAB_DIR/run.sh" "$mode" --kernel "$variant" --machine "$machine" --results "$results" --env NODE_VFIO_API_TARGETS=lab \
    --env NODE_VFIO_TEST_RUNNING="$results/running.txt" -- \
    node scripts/test.mjs "${LAB_MACHINE_TESTS[@]}" "${test_args[@]}" || rc=$?
  counts=$(grep -aoE '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$results/output.log" 2>/dev/null | tail -1 || true)
}
for run in "${runs[@]}"; do
  IFS=: read -r mode variant machine <<<"$run"
  variant=${variant:-group}
  machine=${machine:-edu}
  if [ "$variant" != group ] && ! kernel_cached "$variant" \
     && [ $((SECONDS - lab_start + kernel_build_estimate_s)) -gt "$budget_s" ]; then
    lab_log "skipping $mode on kernel '$variant': it is not built yet and building it (about ${kernel_build_estimate_s} s) would pass the ${budget_s} s budget"
    summary+=("$(printf '%-8s %-8s %-10s %-8s %s' "$machine" "$mode" "$variant" skipped "kernel not built (time budget)")")
    continue
  fi
  kernel_cached "$variant" || bash "$LAB_DIR/build-kernel.sh" "$variant" >/dev/null
  results=$PROJECT_DIR/.lab-results/$stamp/$machine-$mode-$variant
  run_start=$EPOCHREALTIME
  run_machine "$results"
  # A guest that died under the emulator without giving a test result (a kernel panic, QEMU
  # exiting on an error, a power-off without a status: run.sh's 125) is booted once more, and the
  # summary says so with the first attempt's reason; its results stay beside the second's. A run
  # whose cases failed, or that hit its timeout, is never run again.
  retried=
  if [ "$rc" -eq 125 ] && [ -z "$counts" ]; then
    first_reason=$(cat "$results/failure" 2>/dev/null || echo "exit 125 without a reason")
    rm -rf "$results.first-attempt" && mv "$results" "$results.first-attempt"
    lab_log "$machine $mode $variant: the guest died without a test result ($first_reason); booting it once more"
    crashes+=("$machine $mode $variant:$results.first-attempt")
    retried=" (second boot; the first: $first_reason)"
    run_machine "$results"
  fi
  seconds=$(printf '%.1f' "$(echo "$EPOCHREALTIME - $run_start" | bc)")
  if [ "$rc" -eq 0 ] && [ -n "$counts" ]; then
    verdict=passed
  else
    verdict=FAILED
    failures=$((failures + 1))
    failed_logs+=("$machine $mode $variant:$results/output.log")
    [ -n "$counts" ] || counts="no test summary (exit $rc: $(cat "$results/failure" 2>/dev/null || echo "see $results/console.log"))"
  fi
  counts+=$retried
  summary+=("$(printf '%-8s %-8s %-10s %-8s %s in %s s' "$machine" "$mode" "$variant" "$verdict" "$counts" "$seconds")")
done

lab_log "summary (results in $PROJECT_DIR/.lab-results/$stamp, whole lab $((SECONDS - lab_start)) s):"
printf '  %-8s %-8s %-10s %-8s %s\n' machine mode kernel result tests >&2
for line in "${summary[@]}"; do printf '  %s\n' "$line" >&2; done
# After the summary, so that a log that keeps only the end of the output (CI's) still names them:
# mocha's list of failing cases from each failed run, without colours, at most 40 lines a run; for
# a run that never got that far (a guest stopped by its timeout) the last lines it printed, which
# name the suite and the last case that finished before it stopped.
for entry in "${failed_logs[@]}"; do
  run=${entry%%:*} log=${entry#*:}
  if sed 's/\x1b\[[0-9;]*m//g' "$log" 2>/dev/null | grep -qE '^  [0-9]+ failing'; then
    lab_log "failing cases of $run ($log):"
    sed 's/\x1b\[[0-9;]*m//g' "$log" | awk '/^  [0-9]+ failing/ { show = 1 } show' | head -40 >&2 || true
  else
    lab_log "$run stopped without mocha's list of failures; the last lines of $log:"
    sed 's/\x1b\[[0-9;]*m//g' "$log" 2>/dev/null | tail -40 >&2 || true
    running=$(dirname "$log")/running.txt
    if [ -f "$running" ]; then lab_log "$run was in the middle of $(cat "$running")"; fi
  fi
  # What the guest's kernel complained of on its console (a stall, a lockup, a warning), which the
  # command's own output does not carry.
  console=$(dirname "$log")/console.log
  complaint='rcu:|INFO:|BUG:|WARNING:|Oops|soft lockup|blocked for more than'
  if grep -qaE "$complaint" "$console" 2>/dev/null; then
    lab_log "$run: what its kernel said on the console ($console):"
    grep -aE -A3 "$complaint" "$console" | tail -20 >&2 || true
  fi
done
# Every guest that died, also where its second boot passed: what the kernel or QEMU said, and the
# case it was in, so that the crash can be chased (these lines end CI's log).
for entry in "${crashes[@]}"; do
  run=${entry%%:*} dir=${entry#*:}
  running=$(cat "$dir/running.txt" 2>/dev/null || echo 'no case yet')
  lab_log "$run: the first boot died: $(cat "$dir/failure" 2>/dev/null); it was in the middle of $running"
  if [ -s "$dir/failure-detail" ]; then sed 's/^/    /' "$dir/failure-detail" >&2; else tail -15 "$dir/console.log" 2>/dev/null | sed 's/^/    /' >&2 || true; fi
done
[ "$failures" -eq 0 ] || lab_die "$failures lab run(s) failed"
exit
}
