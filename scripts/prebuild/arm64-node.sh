#!/usr/bin/env bash
# Prepares an arm64 Node.js that qemu-user can run on this (x64) machine, for testing the
# linux-arm64 prebuild: Debian trixie's nodejs:arm64 (20.19, N-API 9) and the libraries it needs,
# unpacked into a private root (not installed), cached in ~/.cache/node-vfio-arm64-node.
# Prints that root; run node as `qemu-aarch64 -L ROOT ROOT/usr/bin/node`.
#
# Trixie rather than this machine's bookworm: bookworm's nodejs is 18.x, older than the package's
# engines (>=20.19) and than mocha 12 needs. Apt runs with its own sources, lists and cache under
# the cache directory, so the machine's apt configuration is neither read nor changed.
set -euo pipefail
cache=${XDG_CACHE_HOME:-$HOME/.cache}/node-vfio-arm64-node
root=$cache/root
if [ -f "$cache/complete" ]; then echo "$root"; exit 0; fi

# The Debian mirror the machine already uses, read at run time.
mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\/debian\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1)
[ -n "$mirror" ] || { echo "arm64-node: cannot find the configured Debian mirror in /etc/apt" >&2; exit 1; }

rm -rf "$cache"
mkdir -p "$cache/apt/sources" "$cache/apt/lists/partial" "$cache/apt/archives/partial" "$cache/debs" "$root"
printf 'Types: deb\nURIs: %s\nSuites: trixie trixie-updates\nComponents: main\nArchitectures: arm64\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
  "$mirror" > "$cache/apt/sources/trixie-arm64.sources"
apt_options=(
  -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$cache/apt/sources"
  -o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt" -o Dir::State::status=/dev/null
  -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Sandbox::User=root
)
apt-get "${apt_options[@]}" -q update >&2
# Everything nodejs needs to run, and nothing it only recommends; with no package installed
# (the empty status file) this is the whole closure.
mapfile -t packages < <(apt-cache "${apt_options[@]}" depends --recurse --no-recommends --no-suggests \
  --no-conflicts --no-breaks --no-replaces --no-enhances nodejs | grep -v '^[ <]' | sort -u)
(cd "$cache/debs" && apt-get "${apt_options[@]}" -q download "${packages[@]}" >&2)
for deb in "$cache/debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
# Trixie keeps everything under /usr; the dynamic loader is still named /lib/ld-linux-aarch64.so.1.
ln -sfn usr/lib "$root/lib"
rm -rf "$cache/debs" "$cache/apt/archives"
touch "$cache/complete"
echo "$root"
