#!/bin/sh
# deps.sh -- install the Debian packages Ember needs, and only those that
# are missing (so a machine that has everything never calls apt-get).
set -e
pkgs="make gcc pkg-config lua5.4 liblua5.4-dev lua-busted luarocks libopenblas-dev libopenblas0-openmp libedit-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev dataset-fashion-mnist fortunes python3 openmpi-bin libopenmpi-dev"
# `deps.sh fuzz` (make fuzz-files): clang with libFuzzer and its OpenMP runtime
[ "${1:-}" = fuzz ] && pkgs="$pkgs clang libclang-rt-14-dev libomp-14-dev"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
