#!/bin/sh
# usage: bench/build_reference.sh SRC [OUT]
#
# Build Meta's reference tools, which `make bench` times beside pdqmatch,
# from a checkout of the public repository facebook/ThreatExchange at SRC,
# outside this repository: into OUT (default /tmp/pdqm-reference), with the
# reference's own release settings.
#   OUT/bin/pdq-photo-hasher  pdq/cpp, `make pdq-photo-hasher` (-O3); it
#                             decodes through ImageMagick's `convert`
#   OUT/bin/vpdq-hash-video   vpdq/cpp, CMake Release (-O3 -DNDEBUG)
# Needs g++, cmake, ImageMagick and FFmpeg's development packages
# (`make bench-deps` installs them).  Without SRC, `make bench` quotes the
# reference's figures from bench/reference-timing.txt instead.
set -eu
[ $# -ge 1 ] || { echo "usage: bench/build_reference.sh SRC [OUT]" >&2; exit 2; }
src=$(cd "$1" && pwd)
out=${2:-/tmp/pdqm-reference}
[ -f "$src/pdq/cpp/Makefile" ] && [ -f "$src/vpdq/cpp/CMakeLists.txt" ] ||
    { echo "build_reference: $src is not a ThreatExchange checkout" >&2; exit 1; }
mkdir -p "$out/bin"
rm -rf "$out/src"
mkdir -p "$out/src"
# Build copies: the checkout stays as it is.
cp -R "$src/pdq" "$src/vpdq" "$out/src/"
make -C "$out/src/pdq/cpp" -j"$(nproc)" pdq-photo-hasher >"$out/pdq-build.log" 2>&1 ||
    { tail -20 "$out/pdq-build.log" >&2; exit 1; }
cp "$out/src/pdq/cpp/pdq-photo-hasher" "$out/bin/"
cmake -S "$out/src/vpdq/cpp" -B "$out/vpdq-build" -DCMAKE_BUILD_TYPE=Release \
    >"$out/vpdq-build.log" 2>&1 &&
    cmake --build "$out/vpdq-build" -j"$(nproc)" --target vpdq-hash-video \
    >>"$out/vpdq-build.log" 2>&1 ||
    { tail -20 "$out/vpdq-build.log" >&2; exit 1; }
find "$out/vpdq-build" -name vpdq-hash-video -type f -perm -u+x -exec cp {} "$out/bin/" \;
git -C "$src" rev-parse HEAD >"$out/commit" 2>/dev/null || echo unknown >"$out/commit"
echo "built $out/bin/pdq-photo-hasher and $out/bin/vpdq-hash-video from $src ($(cat "$out/commit"))"
