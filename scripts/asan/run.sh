#!/usr/bin/env bash
# Builds the native addon with AddressSanitizer + LeakSanitizer into build/asan/ and runs the
# native test suite (test/native) under it. Passes only when the tests pass AND the sanitizers
# reported nothing. Installs a compiler with the ASan runtime through apt when none is present
# (CI starts from a bare Debian 12 + Node machine).
#
# Node itself is not instrumented: the ASan runtime is preloaded (LD_PRELOAD) so that it owns
# malloc/free for the whole process, and only the addon's own code carries the checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/build/asan
REPORTS=$OUT/reports

log() { echo "asan: $*"; }

# Prints "<compiler> <runtime .so>" for the first usable toolchain, or nothing.
find_toolchain() {
  local rt
  if command -v clang++ >/dev/null 2>&1; then
    rt=$(clang++ -print-file-name="libclang_rt.asan-$(uname -m).so")
    if [[ -f $rt ]]; then echo "clang++ $rt"; return; fi
  fi
  if command -v g++ >/dev/null 2>&1; then
    rt=$(g++ -print-file-name=libasan.so)
    if [[ -f $rt ]]; then echo "g++ $rt"; return; fi
  fi
}

install_toolchain() {
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  log "no compiler with an ASan runtime found; installing clang through apt"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq clang >/dev/null
  # Debian 12 ships the sanitizer runtimes of clang-N in libclang-rt-N-dev.
  local major
  major=$(clang++ -dumpversion | cut -d. -f1)
  "${sudo[@]}" apt-get install -y -qq "libclang-rt-${major}-dev" >/dev/null || true
}

# The directory holding node_api.h for the running Node.
node_headers() {
  local candidates=(
    "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node"
    "$(npm config get nodedir 2>/dev/null)/include/node"
    "$HOME/.cache/node-gyp/$(node -p process.versions.node)/include/node"
  )
  for dir in "${candidates[@]}"; do
    if [[ -f $dir/node_api.h ]]; then echo "$dir"; return; fi
  done
  # Last resort: let node-gyp (bundled with npm) download the headers.
  local gyp
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  node "$gyp" install >/dev/null
  echo "$HOME/.cache/node-gyp/$(node -p process.versions.node)/include/node"
}

toolchain=$(find_toolchain)
if [[ -z $toolchain ]]; then
  install_toolchain
  toolchain=$(find_toolchain)
fi
if [[ -z $toolchain ]]; then
  echo "asan: could not find or install a compiler with the AddressSanitizer runtime" >&2
  exit 1
fi
read -r CXX RUNTIME <<<"$toolchain"
HEADERS=$(node_headers)
log "compiler $CXX, runtime $RUNTIME, node headers $HEADERS"

# The JavaScript build first: it rebuilds build/Release with `node-gyp rebuild` when the addon's
# sources are newer (always, in a fresh checkout), which deletes all of build/, build/asan too.
npm run --silent build

mkdir -p "$OUT"
shared_libasan=()
[[ $CXX == clang++ ]] && shared_libasan=(-shared-libasan)
# Same defines and language options as binding.gyp, plus the sanitizer and debug info.
"$CXX" -std=c++17 -fno-exceptions -fPIC -shared "${shared_libasan[@]}" \
  -fsanitize=address -fno-omit-frame-pointer -fno-common -g -O1 -Wall -Wextra -Wno-unused-parameter \
  -DNAPI_VERSION=9 -DNAPI_DISABLE_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED \
  -I"$HEADERS" -I"$(node -p "require('node-addon-api').include_dir")" \
  native/*.cc -o "$OUT/vfio.node"
if [[ $(nm -D "$OUT/vfio.node") != *__asan_init* ]]; then
  echo "asan: $OUT/vfio.node carries no ASan instrumentation" >&2
  exit 1
fi

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
export LD_PRELOAD=$RUNTIME
export ASAN_OPTIONS="detect_leaks=1:log_path=$REPORTS/report:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$ROOT/scripts/asan/lsan.supp:print_suppressions=0"
export NODE_VFIO_ADDON=$OUT/vfio.node
# Prove the sanitizer runtime is in the process and the instrumented addon is the one loaded.
node -e "
  const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
  if (!/asan/.test(maps)) { console.error('asan: the ASan runtime is not loaded'); process.exit(1); }
  const s = require('./dist/lib/sys/addon').addonStatus();
  if (!s.available || s.source !== process.env.NODE_VFIO_ADDON) { console.error('asan: wrong addon', s); process.exit(1); }
"
status=0
node scripts/test.mjs 'dist/test/native/**/*.test.js' || status=$?
unset LD_PRELOAD

if compgen -G "$REPORTS/report*" >/dev/null; then
  echo "asan: sanitizer reports:" >&2
  cat "$REPORTS"/report* >&2
  exit 1
fi
if [[ $status -ne 0 ]]; then
  echo "asan: the native tests failed under ASan (exit $status)" >&2
  exit "$status"
fi
log "no AddressSanitizer or LeakSanitizer reports"
