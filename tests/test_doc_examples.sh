#!/bin/sh
# tests/test_doc_examples.sh — every doc/algorithms/*.md page's worked example is a test.
#
# Runs the single ```sh block under the page's "## Worked example" heading from the source
# root, with the built `lowbit` first on PATH and $TMP a fresh scratch directory. Every
# command must exit 0 (the blocks end with `lowbit compare` against fixtures made
# independently by tests/gen/doc_*.py). Exit 77 (skip) when no page has an example yet.
set -u
srcdir=$(cd "$(dirname "$0")/.." && pwd)
bin=${LB_TEST_BIN:-$PWD/lowbit}
bindir=$(cd "$(dirname "$bin")" && pwd)
scratch=${LB_TEST_TMP:-${TMPDIR:-/tmp}}/doc_examples.$$
mkdir -p "$scratch"
trap 'rm -rf "$scratch"' EXIT

ran=0 failed=0
for page in "$srcdir"/doc/algorithms/*.md; do
    [ -f "$page" ] || continue
    script="$scratch/$(basename "$page" .md).sh"
    awk '/^## Worked example/ { inex = 1; next }
         inex && /^## / { exit }
         inex && /^```sh/ { code = 1; next }
         inex && code && /^```/ { exit }
         inex && code { print }' "$page" > "$script"
    [ -s "$script" ] || { echo "SKIP: $page has no worked example"; continue; }
    ran=$((ran + 1))
    mkdir -p "$scratch/tmp"
    if (cd "$srcdir" && PATH="$bindir:$PATH" TMP="$scratch/tmp" sh -e "$script") > "$scratch/out" 2>&1; then
        echo "PASS: $(basename "$page")"
    else
        failed=$((failed + 1))
        echo "FAIL: $(basename "$page")"
        sed 's/^/    /' "$scratch/out"
    fi
done
echo "worked examples: $ran run, $failed failed"
[ "$ran" -gt 0 ] || exit 77
[ "$failed" -eq 0 ]
