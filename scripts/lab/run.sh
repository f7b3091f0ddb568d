#!/usr/bin/env bash
# Boots the lab kernel under QEMU with the edu device bound to vfio-pci and runs one command in the
# guest, inside the host's root filesystem (shared read-only over 9p), from the project directory.
#
#   scripts/lab/run.sh <noiommu|iommu> [--kernel group|nullgroup] [--machine edu|nvme|multi|sriov]
#                      [--timeout SECONDS] [--env NAME=VALUE]... [--results DIR] -- COMMAND [ARG...]
#
# The command sees NODE_VFIO_KERNEL=native, NODE_VFIO_LAB_MODE, NODE_VFIO_LAB_KERNEL,
# NODE_VFIO_LAB_MACHINE, NODE_VFIO_BDFS (the devices bound to vfio-pci, in bus order), NODE_VFIO_BDF
# (the first of them), NODE_VFIO_LAB_RESULTS (a writable directory that comes back to the host) and
# NODE_VFIO_LAB_COMMAND_START (guest uptime in seconds when the command was launched).
# The exit status is the command's. A kernel panic, a QEMU error, a guest that never reports a
# status, a guest whose console falls silent in the middle of the run (NODE_VFIO_LAB_STALL_SECONDS,
# default 300 s: it is then made to print its CPUs and blocked tasks and is stopped), or a run
# longer than the timeout (NODE_VFIO_LAB_TIMEOUT, default 1200 s) fails with 125 (124 for the
# timeout) and prints the tail of the guest's console.
source "$(dirname "$0")/common.sh"
# The body is one block, so bash reads it whole before running: editing this file while a long
# run is under way cannot change what that run does.
{

usage() { sed -n '5,6p' "$0" | sed 's/^# *//' >&2; exit 2; }
mode=${1:-}; shift || true
case "$mode" in noiommu | iommu) ;; *) usage ;; esac
variant=group
machine=edu
timeout_s=${NODE_VFIO_LAB_TIMEOUT:-1200}
results=
extra_env=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) variant=$2; shift 2 ;;
    --machine) machine=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --env) [[ $2 == [A-Za-z_]*=* ]] || lab_die "--env wants NAME=VALUE, got '$2'"; extra_env+=("$2"); shift 2 ;;
    --results) results=$2; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[ $# -gt 0 ] || usage

lab_ensure_packages
kernel=$(bash "$LAB_DIR/build-kernel.sh" "$variant")
initrd=$(bash "$LAB_DIR/initramfs.sh")

# The run directory is shared writable with the guest and mounted there at the same path, inside
# the host root the command sees.
if [ -z "$results" ]; then
  mkdir -p "$PROJECT_DIR/.lab-results"
  results=$PROJECT_DIR/.lab-results/$(date +%Y%m%d-%H%M%S)-$machine-$mode-$variant-$$
fi
mkdir -p "$results"
results=$(cd "$results" && pwd -P)
project=$(cd "$PROJECT_DIR" && pwd -P)
for path in "$results" "$project"; do
  case "$path" in
    /tmp | /proc/* | /sys/* | /dev/*) lab_die "$path is hidden in the guest (it mounts its own /tmp, /proc, /sys, /dev); put the project and the results elsewhere" ;;
    *[[:space:]]*) lab_die "'$path' contains white space, which the guest's kernel command line and mounts do not take" ;;
  esac
done
rm -f "$results"/{failure,failure-detail,stalled,stall-host.txt,project-path,bind-ids,nvme.img,qemu-exit,shutdown-hung,no-output,status,status.tmp,setup-error,output.log,guest.log,kernel.log,console.log,timing}

node_dir=$(dirname "$(command -v node)")
{
  echo "# written by scripts/lab/run.sh; the guest runs it with the host's /bin/sh inside chroot"
  echo "export PATH=$(lab_sh_quote "$node_dir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")"
  echo "export NODE_VFIO_KERNEL=native NODE_VFIO_LAB_MODE=$mode NODE_VFIO_LAB_KERNEL=$variant NODE_VFIO_LAB_MACHINE=$machine"
  for assignment in "${extra_env[@]}"; do echo "export ${assignment%%=*}=$(lab_sh_quote "${assignment#*=}")"; done
  echo "cd $(lab_sh_quote "$project") || exit 126"
  printf 'exec'
  for arg in "$@"; do printf ' %s' "$(lab_sh_quote "$arg")"; done
  printf '\n'
} >"$results/job.sh"
printf '%s\n' "$results" >"$results/host-path"
printf '%s\n' "$project" >"$results/project-path"
lab_machine "$machine" "$results"
printf '%s\n' "${LAB_MACHINE_BIND[@]}" >"$results/bind-ids"

# no_timer_check: under TCG on a loaded host the early IO-APIC timer check can miss its ticks and
# panic the boot ("timer doesn't work through Interrupt-remapped IO-APIC", seen in the lab); the
# emulated timer does work, so the check only adds a way to fail.
# unknown_nmi_panic and panic_sys_info: the stall watchdog's NMI makes a hung guest panic and
# print where every CPU is and every task blocked in the kernel (the lab kernel has no sysrq). Not
# the list of all tasks: with the scheduler's statistics that comes to thousands of lines, which
# the emulated serial port took more than 90 s to print.
append="console=ttyS0 quiet panic=-1 oops=panic no_timer_check unknown_nmi_panic panic_sys_info=blocked_tasks,all_bt"
qemu_mode=()
case "$mode" in
  noiommu) append+=" vfio.enable_unsafe_noiommu_mode=1" ;;
  iommu)
    # The vIOMMU is created before the PCI devices it translates for.
    qemu_mode=(-device intel-iommu,intremap=on,caching-mode=on)
    append+=" intel_iommu=on"
    ;;
esac
[ -z "$LAB_MACHINE_APPEND" ] || append+=" $LAB_MACHINE_APPEND"
lab_choose_accel "$kernel"
accel=(-accel "$LAB_ACCEL")
# The monitor is for the stall watchdog; its socket is outside the results directory, whose path
# can be longer than a socket's name may be.
monitor_socket=$(mktemp -u "${TMPDIR:-/tmp}/node-vfio-lab-monitor.XXXXXX")
qemu=(qemu-system-x86_64 -M q35,kernel-irqchip=split "${accel[@]}" -cpu max -m 2G -smp 2
  -display none -monitor "unix:$monitor_socket,server=on,wait=off" -serial stdio -no-reboot
  -kernel "$kernel" -initrd "$initrd" -append "$append"
  "${qemu_mode[@]}"
  "${LAB_MACHINE_ARGS[@]}"
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
  -virtfs "local,path=$results,mount_tag=labrun,security_model=none,multidevs=remap")

# This run's QEMU (and the timeout(1) that runs it), as the watchdogs below find and stop it.
qemu_of_this_run="path=$results,mount_tag=labrun"
lab_log "booting: machine '$machine', $mode mode, kernel '$variant', timeout ${timeout_s} s, $LAB_ACCEL ($LAB_ACCEL_WHY); results in $results"
lab_log "command: $*"
start=$EPOCHREALTIME
# A guest that reported its command's status but then hangs on the way down (seen once: an RCU
# stall after the command had ended) has done its work: give it a minute to power off, then stop
# QEMU instead of waiting for the whole timeout. The run's results directory names this QEMU.
(
  while [ ! -f "$results/status" ]; do
    sleep 2
    kill -0 $$ 2>/dev/null || exit 0
    [ -s "$results/qemu-exit" ] && exit 0
  done
  for _ in $(seq 60); do sleep 1; [ -s "$results/qemu-exit" ] && exit 0; done
  if pkill -f -- "$qemu_of_this_run"; then touch "$results/shutdown-hung"; fi
) &
watchdog=$!
# A guest that has printed nothing long after a boot takes (2-22 s seen, even on a busy machine)
# is hung, not slow: stop it then rather than at the whole timeout.
first_output_s=${NODE_VFIO_LAB_FIRST_OUTPUT_SECONDS:-180}
(
  for _ in $(seq "$first_output_s"); do
    sleep 1
    kill -0 $$ 2>/dev/null || exit 0
    [ -s "$results/console.log" ] && exit 0
    [ -s "$results/qemu-exit" ] && exit 0
  done
  if pkill -f -- "$qemu_of_this_run"; then touch "$results/no-output"; fi
) &
silence_watchdog=$!
# A guest whose console has been silent for minutes in the middle of a run is hung: no case is
# quiet that long (the longest seen is under a minute). QEMU's registers are sampled twice (are
# the vCPUs moving, or halted?), then an NMI makes the guest's kernel panic and print every CPU's
# stack and every blocked task's, which ends the run with the reason; a QEMU that does not even do
# that is stopped. Either way the run ends minutes after the hang instead of at the whole timeout.
stall_s=${NODE_VFIO_LAB_STALL_SECONDS:-300}
(
  while sleep 5; do
    kill -0 $$ 2>/dev/null || exit 0
    [ -s "$results/qemu-exit" ] || [ -f "$results/status" ] && exit 0
    [ -s "$results/console.log" ] || continue
    silent=$(($(date +%s) - $(stat -c %Y "$results/console.log")))
    [ "$silent" -ge "$stall_s" ] || continue
    printf '%s\n' "$silent" >"$results/stalled"
    {
      # timeout(1)'s command line names the results directory too.
      qemu_pid=
      for pid in $(pgrep -f -- "$qemu_of_this_run"); do
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == qemu-system* ]] && qemu_pid=$pid
      done
      echo "QEMU $qemu_pid threads (name state wchan):"
      for task in /proc/"$qemu_pid"/task/*; do
        echo "  $(cat "$task/comm" 2>/dev/null) $(awk '{print $3}' "$task/stat" 2>/dev/null) $(cat "$task/wchan" 2>/dev/null)"
      done
      for sample in 1 2; do
        node "$LAB_DIR/monitor.mjs" "$monitor_socket" 'info status' 'info registers -a' | grep -E 'monitor:|VM status|^  CPU#|RIP=' || true
        [ "$sample" = 2 ] || sleep 2
      done
    } >"$results/stall-host.txt" 2>&1
    node "$LAB_DIR/monitor.mjs" "$monitor_socket" nmi >>"$results/stall-host.txt" 2>&1 || true
    for _ in $(seq 120); do sleep 1; [ -s "$results/qemu-exit" ] && exit 0; done
    if grep -q 'Kernel panic' "$results/console.log"; then
      echo "the guest panicked on the NMI but had not powered off 120 s later; QEMU was stopped" >>"$results/stall-host.txt"
    else
      echo "the guest did not panic on the NMI within 120 s; QEMU was stopped" >>"$results/stall-host.txt"
    fi
    pkill -f -- "$qemu_of_this_run" || true
    exit 0
  done
) &
stall_watchdog=$!
init_at=
# The console is streamed as it comes and kept in console.log; the moment /init reports is the
# host-side boot time (QEMU start, firmware, kernel boot).
while IFS= read -r line || [ -n "$line" ]; do
  line=${line%$'\r'}
  printf '%s\n' "$line"
  printf '%s\n' "$line" >>"$results/console.log"
  if [ -z "$init_at" ] && [[ $line == "lab: init started"* ]]; then init_at=$EPOCHREALTIME; fi
done < <(rc=0; timeout -k 10 "$timeout_s" "${qemu[@]}" </dev/null 2>&1 || rc=$?; echo "$rc" >"$results/qemu-exit")
end=$EPOCHREALTIME
# The console closes a moment before the exit status of QEMU is written.
wait "$!" 2>/dev/null || true
for _ in $(seq 100); do [ -s "$results/qemu-exit" ] && break; sleep 0.1; done
qemu_exit=$(cat "$results/qemu-exit" 2>/dev/null || echo unknown)
kill "$watchdog" "$silence_watchdog" "$stall_watchdog" 2>/dev/null || true
rm -f "$monitor_socket"
if [ -f "$results/shutdown-hung" ] && [ -f "$results/status" ]; then
  lab_log "the guest reported its status but did not power off within 60 s; QEMU was stopped (console: $results/console.log)"
  qemu_exit=0
fi

elapsed() { printf '%.2f' "$(echo "$2 - $1" | bc)"; }
timing() { sed -n "s/^$1=//p" "$results/timing" 2>/dev/null; }
whole=$(elapsed "$start" "$end")
report=("whole run ${whole} s")
[ -n "$init_at" ] && report+=("boot to init $(elapsed "$start" "$init_at") s on the host clock ($(timing init_seconds) s kernel uptime)")
[ -n "$(timing command_seconds)" ] && report+=("command $(timing command_seconds) s")
lab_log "timing: $(IFS=';'; echo "${report[*]}" | sed 's/;/; /g')"

# Kernel warnings do not fail the run, but they are worth seeing.
if [ -f "$results/kernel.log" ] && grep -qE 'WARNING:|BUG:|Call Trace:' "$results/kernel.log"; then
  lab_log "the guest kernel logged warnings (see $results/kernel.log):"
  grep -E -A3 'WARNING:|BUG:' "$results/kernel.log" | head -20 >&9 || true
fi

# What a hung guest showed: QEMU's side, then from the panic the NMI caused the panicking CPU's
# stack, the other CPUs' backtraces, and the stacks of the job's processes and of every task
# blocked in the kernel.
stall_detail() {
  head -30 "$results/stall-host.txt" 2>/dev/null || true
  sed 's/\x1b\[[0-9;]*m//g' "$results/console.log" 2>/dev/null | awk '
    # The stack of a CPU: its NMI frames, then what the NMI interrupted, up to </TASK>.
    /Kernel panic|NMI backtrace for cpu|NMI received/ { block = 45 }
    /task:[^ ]+ +state:/ {
      name = $0; sub(/.*task:/, "", name); sub(/ .*/, "", name)
      state = $0; sub(/.*state:/, "", state); sub(/ .*/, "", state)
      in_task = (name ~ /^(node|tee|sh|bash)$/ || state == "D")
    }
    in_task || block > 0 { print; if (block > 0) block-- }
    /<\/TASK>/ { in_task = 0; block = 0 }
  ' | head -120
}

# A run that ends here names why in $results/failure (and, for a crash, the kernel's or QEMU's own
# words in failure-detail), so that lab.sh can say it in its summary.
failed() {
  lab_log "FAILED ($mode, kernel '$variant'): $1"
  printf '%s\n' "$1" >"$results/failure"
  if [ -f "$results/stalled" ]; then
    stall_detail >"$results/failure-detail"
  else
    grep -aE -A25 'Kernel panic|Oops|BUG:|general protection|qemu-system|Assertion|assertion' "$results/console.log" 2>/dev/null \
      | head -40 >"$results/failure-detail" || true
  fi
  lab_log "last lines of the guest console ($results/console.log):"
  tail -n 40 "$results/console.log" >&9 2>/dev/null || true
  exit "${2:-125}"
}
if [ -f "$results/stalled" ]; then
  if grep -q 'did not panic on the NMI' "$results/stall-host.txt" 2>/dev/null; then
    how="it did not even panic on an NMI, and QEMU was stopped (its threads and vCPUs: stall-host.txt)"
  else
    how="an NMI made it print its CPUs and blocked tasks and stopped it (stall-host.txt, console.log)"
  fi
  failed "the guest's console was silent for $(cat "$results/stalled") s in the middle of the run, so it was hung: $how"
fi
[ -f "$results/no-output" ] && failed "the guest printed nothing on its console within ${first_output_s} s and was stopped (accelerator: $LAB_ACCEL, $LAB_ACCEL_WHY; NODE_VFIO_LAB_ACCEL=tcg forces TCG)" 124
[ "$qemu_exit" = 124 ] || [ "$qemu_exit" = 137 ] && failed "the guest did not finish within ${timeout_s} s (raise --timeout or NODE_VFIO_LAB_TIMEOUT if it was only slow)" 124
grep -q 'Kernel panic' "$results/console.log" 2>/dev/null && failed "the guest kernel panicked"
[ -f "$results/setup-error" ] && failed "the guest could not set up the run: $(cat "$results/setup-error")"
[ "$qemu_exit" = 0 ] || failed "QEMU exited with status $qemu_exit"
[ -f "$results/status" ] || failed "the guest powered off without reporting the command's exit status"
status=$(cat "$results/status")
[[ $status =~ ^[0-9]+$ ]] || failed "the guest reported an unreadable exit status '$status'"
lab_log "guest command exited with status $status ($mode, kernel '$variant')"
exit "$status"
exit
}
