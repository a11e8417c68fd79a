#!/bin/sh
# scripts/fetch-corpus.sh — fetch the text corpora of `lowbit data text` and
# `lowbit train --model gpt` without installing anything.
#
# usage: scripts/fetch-corpus.sh [default|moby-dick|all]     (default: default)
#
#   default    Jane Austen's six novels: Debian package r-cran-janeaustenr
#              (data/Rdata.rdb, an R lazy-load database that lowbit reads itself;
#              R is not needed)
#   moby-dick  Moby-Dick, Project Gutenberg #2701: mobydick.txt of the Debian
#              package golang-github-colinmarc-hdfs-dev
#
# Each package is fetched with `apt-get download` (which ignores its
# dependencies) and unpacked with `dpkg-deb -x` into
#   ${LOWBIT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lowbit}/PACKAGE/
# where lowbit looks for it. The script is idempotent: when the file is
# already there it only prints its path. `apt-get update` is run (as root)
# only if `apt-get download` fails, e.g. on a machine with empty package lists.
set -eu

usage() {
    echo "usage: $0 [default|moby-dick|all]" >&2
    exit 2
}

[ $# -le 1 ] || usage
what=${1:-default}
case $what in
default | moby-dick | all) ;;
-h | --help)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*) usage ;;
esac

if [ -n "${LOWBIT_DATA_DIR:-}" ]; then
    cache=$LOWBIT_DATA_DIR
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
    cache=$XDG_CACHE_HOME/lowbit
elif [ -n "${HOME:-}" ]; then
    cache=$HOME/.cache/lowbit
else
    echo "$0: set LOWBIT_DATA_DIR (HOME is not set)" >&2
    exit 1
fi

# fetch NAME PACKAGE RELATIVE_PATH SHA256
fetch() {
    name=$1 package=$2 relative=$3 sha=$4
    dest=$cache/$package
    target=$dest/$relative
    if [ -f "$target" ]; then
        echo "$name: $target"
        return 0
    fi
    for tool in apt-get dpkg-deb; do
        if ! command -v $tool >/dev/null 2>&1; then
            echo "$0: $tool not found: this script needs a Debian-based system" >&2
            exit 1
        fi
    done
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.fetch-$package.XXXXXX")
    # apt-get download writes into the current directory.
    if ! (cd "$work" && apt-get download "$package" >"$work/log" 2>&1); then
        echo "$name: apt-get download $package failed; running apt-get update" >&2
        if [ "$(id -u)" -eq 0 ]; then
            apt-get update >"$work/update.log" 2>&1 || {
                cat "$work/update.log" >&2
                rm -rf "$work"
                echo "$0: apt-get update failed" >&2
                exit 1
            }
        elif command -v sudo >/dev/null 2>&1; then
            # the log belongs to the user, so the redirect rightly runs without sudo
            # shellcheck disable=SC2024
            sudo apt-get update >"$work/update.log" 2>&1 || {
                rm -rf "$work"
                echo "$0: 'sudo apt-get update' failed; run it by hand, then retry" >&2
                exit 1
            }
        else
            rm -rf "$work"
            echo "$0: apt-get download failed and apt-get update needs root; run" \
                "'apt-get update' as root, then retry" >&2
            exit 1
        fi
        if ! (cd "$work" && apt-get download "$package" >"$work/log" 2>&1); then
            cat "$work/log" >&2
            rm -rf "$work"
            echo "$0: apt-get download $package failed" >&2
            exit 1
        fi
    fi
    set -- "$work"/"$package"_*.deb
    if [ ! -f "$1" ]; then
        rm -rf "$work"
        echo "$0: apt-get download left no $package .deb" >&2
        exit 1
    fi
    dpkg-deb -x "$1" "$work/root"
    if [ ! -f "$work/root/$relative" ]; then
        rm -rf "$work"
        echo "$0: $package does not contain $relative (another package version?)" >&2
        exit 1
    fi
    if command -v sha256sum >/dev/null 2>&1; then
        got=$(sha256sum "$work/root/$relative" | cut -d' ' -f1)
        if [ "$got" != "$sha" ]; then
            echo "$name: warning: sha256 of $relative is $got, expected $sha" \
                "(another package version; lowbit checks the content when loading)" >&2
        fi
    fi
    # Replace the destination in one step so that a half-extracted tree is
    # never taken for a complete one.
    rm -rf "$dest"
    mv "$work/root" "$dest"
    rm -rf "$work"
    echo "$name: $target"
}

if [ "$what" = default ] || [ "$what" = all ]; then
    fetch default r-cran-janeaustenr \
        usr/lib/R/site-library/janeaustenr/data/Rdata.rdb \
        8fb5198960d0da724b1562f96e4221e5c1b41ff455000280b02c55980c3d8f21
fi
if [ "$what" = moby-dick ] || [ "$what" = all ]; then
    fetch moby-dick golang-github-colinmarc-hdfs-dev \
        usr/share/gocode/src/github.com/colinmarc/hdfs/testdata/mobydick.txt \
        870fe07753b139bbcbcf45a6de27e4ec620434972ec78c08267655003333f0f8
fi
