#!/usr/bin/env python3
"""tools/gen_unicode_tables.py — writes datasets/unicode_tables.c, the Unicode
data of lowbit's BERT WordPiece tokenizer (datasets/tokenizer.c).

    python3 tools/gen_unicode_tables.py [--out datasets/unicode_tables.c]
    python3 tools/gen_unicode_tables.py --check      # needs the `tokenizers` package

Source: Python's `unicodedata` (Unicode 14.0.0 in Python 3.11; the script
refuses another version so the committed file is reproducible), plus the
White_Space property (PropList.txt, hard-coded below: unicodedata has no
accessor for it) and a short list of corrections, below, that make the tables
agree with the tokenizer the model was trained and is used with: Hugging Face
`tokenizers` (checked with 0.19.1), whose BertNormalizer / BertPreTokenizer
take the general categories from the Rust crate unicode_categories
(Unicode 8.0 data) and canonical decompositions from
unicode-normalization-alignments (also pre-Unicode-13 data), while lower-case
mapping and White_Space come from the Rust standard library (current data).

What the tokenizer needs per code point (flags, one range table):
  CONTROL     dropped by clean_text: general category Cc, Cf, Co or Cs,
              except TAB, LF, CR (which are whitespace). Unassigned (Cn)
              code points are kept, as Hugging Face keeps them.
  WHITESPACE  mapped to ' ' by clean_text and split on: White_Space.
  PUNCT       isolated as a word of its own: ASCII 33-47, 58-64, 91-96,
              123-126 (BERT counts $, +, <, =, >, ^, `, |, ~ as punctuation)
              or general category P*.
  MN          removed after NFD when accents are stripped: category Mn.
Lower-case map: the single code point of str.lower() where it differs (only
U+0130 lowers to two code points, i + U+0307; the C code handles it), as runs
(first, last, stride, delta). Decompositions: for each code point whose NFD
differs from itself (Hangul syllables excepted: the C code decomposes them
algorithmically), the NFD with the MN code points removed (0 to 3 code
points), which is what "NFD, then drop Mn" leaves of it.

--check compares, for every code point, the C algorithm run on these tables
(simulated here) with tokenizers' BertNormalizer(clean_text, handle_chinese_
chars, lowercase; strip_accents following lowercase) and BertPreTokenizer,
and prints every difference; it must print none.
"""
import argparse
import sys
import unicodedata

UNICODE_VERSION = "14.0.0"
MAX_CP = 0x110000

# PropList.txt White_Space (unchanged since Unicode 6.3, when U+180E left it).
WHITE_SPACE = (
    list(range(0x09, 0x0E)) + [0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B)) +
    [0x2028, 0x2029, 0x202F, 0x205F, 0x3000])

# BERT's _is_chinese_char ranges (the CJK Unified Ideographs blocks and
# compatibility ideographs); the C code tests them directly.
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]

# --- Corrections towards Hugging Face tokenizers (0.19.1) ----------------------
# Every entry is a code point assigned or re-categorised after Unicode 8.0,
# which the Rust tables of tokenizers do not know; found with --check.
def _r(*spans):
    out = set()
    for s in spans:
        if isinstance(s, tuple):
            out.update(range(s[0], s[1] + 1))
        else:
            out.add(s)
    return out

# Cf in Unicode 14, unassigned (so kept) for tokenizers.
HF_NOT_CONTROL = _r((0x0890, 0x0891), 0x08E2, 0x110CD, (0x13430, 0x13438))
# Mn in Unicode 14, not Mn for tokenizers (so not stripped).
HF_NOT_MN = _r(
    0x07FD, (0x0898, 0x089F), (0x08CA, 0x08E1), 0x09FE, (0x0AFA, 0x0AFF), 0x0B55, 0x0C04,
    0x0C3C, 0x0D00, (0x0D3B, 0x0D3C), 0x0D81, 0x0EBA, 0x180F, (0x1885, 0x1886),
    (0x1ABF, 0x1ACE), (0x1DF6, 0x1DFB), 0xA82C, 0xA8C5, 0xA8FF, 0xA9BD, (0x10D24, 0x10D27),
    (0x10EAB, 0x10EAC), (0x10F46, 0x10F50), (0x10F82, 0x10F85), 0x11070, (0x11073, 0x11074),
    0x110C2, 0x111C9, 0x111CF, 0x1123E, 0x1133B, (0x11438, 0x1143F), (0x11442, 0x11444),
    0x11446, 0x1145E, (0x1182F, 0x11837), (0x11839, 0x1183A), (0x1193B, 0x1193C), 0x1193E,
    0x11943, (0x119D4, 0x119D7), (0x119DA, 0x119DB), 0x119E0, (0x11A01, 0x11A0A),
    (0x11A33, 0x11A38), (0x11A3B, 0x11A3E), 0x11A47, (0x11A51, 0x11A56), (0x11A59, 0x11A5B),
    (0x11A8A, 0x11A96), (0x11A98, 0x11A99), (0x11C30, 0x11C36), (0x11C38, 0x11C3D), 0x11C3F,
    (0x11C92, 0x11CA7), (0x11CAA, 0x11CB0), (0x11CB2, 0x11CB3), (0x11CB5, 0x11CB6),
    (0x11D31, 0x11D36), 0x11D3A, (0x11D3C, 0x11D3D), (0x11D3F, 0x11D45), 0x11D47,
    (0x11D90, 0x11D91), 0x11D95, 0x11D97, (0x11EF3, 0x11EF4), 0x16F4F, 0x16FE4,
    (0x1CF00, 0x1CF2D), (0x1CF30, 0x1CF46), (0x1E000, 0x1E006), (0x1E008, 0x1E018),
    (0x1E01B, 0x1E021), (0x1E023, 0x1E024), (0x1E026, 0x1E02A), (0x1E130, 0x1E136), 0x1E2AE,
    (0x1E2EC, 0x1E2EF), (0x1E944, 0x1E94A))
# Mc in Unicode 14, Mn for tokenizers (so stripped).
HF_EXTRA_MN = _r(0x1734)
# P* in Unicode 14, not punctuation for tokenizers.
HF_NOT_PUNCT = _r(
    0x061D, 0x09FD, 0x0A76, 0x0C77, 0x0C84, (0x1B7D, 0x1B7E), (0x2E43, 0x2E4F), (0x2E52, 0x2E5D),
    0x10EAD, (0x10F55, 0x10F59), (0x10F86, 0x10F89), (0x1144B, 0x1144F), (0x1145A, 0x1145B),
    0x1145D, (0x11660, 0x1166C), 0x116B9, 0x1183B, (0x11944, 0x11946), 0x119E2,
    (0x11A3F, 0x11A46), (0x11A9A, 0x11A9C), (0x11A9E, 0x11AA2), (0x11C41, 0x11C45),
    (0x11C70, 0x11C71), (0x11EF7, 0x11EF8), 0x11FFF, (0x12FF1, 0x12FF2), (0x16E97, 0x16E9A),
    0x16FE2, (0x1E95E, 0x1E95F))
# Not P* in Unicode 14, punctuation for tokenizers (Po in Unicode 8.0).
HF_EXTRA_PUNCT = _r(0x166D, 0x111C9)
# Canonical decompositions that tokenizers does not apply.
HF_NO_DECOMPOSITION = _r(0x11938)


def is_cjk(cp):
    return any(a <= cp <= b for a, b in CJK_RANGES)


def is_ascii_punct(cp):
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126


def is_surrogate(cp):
    return 0xD800 <= cp <= 0xDFFF


FLAG_CONTROL, FLAG_WHITESPACE, FLAG_PUNCT, FLAG_MN = 1, 2, 4, 8


def flags_of(cp, white):
    cat = unicodedata.category(chr(cp))
    f = 0
    if cat in ("Cc", "Cf", "Co", "Cs") and cp not in (9, 10, 13) and cp not in HF_NOT_CONTROL:
        f |= FLAG_CONTROL
    if cp in white:
        f |= FLAG_WHITESPACE
    if ((is_ascii_punct(cp) or cat.startswith("P")) and cp not in HF_NOT_PUNCT) or \
            cp in HF_EXTRA_PUNCT:
        f |= FLAG_PUNCT
    if (cat == "Mn" and cp not in HF_NOT_MN) or cp in HF_EXTRA_MN:
        f |= FLAG_MN
    return f


def build_tables():
    white = set(WHITE_SPACE)
    flags = [flags_of(cp, white) for cp in range(MAX_CP)]
    # Ranges of equal non-zero flags.
    ranges = []
    for cp, f in enumerate(flags):
        if f == 0:
            continue
        if ranges and ranges[-1][1] == cp - 1 and ranges[-1][2] == f:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, f])
    # Single-code-point lower-case mappings.
    lower = []
    for cp in range(MAX_CP):
        if is_surrogate(cp):
            continue
        low = chr(cp).lower()
        if low != chr(cp) and len(low) == 1:
            lower.append((cp, ord(low) - cp))
        elif len(low) != 1:
            assert cp == 0x130, hex(cp)
    runs = []  # [first, last, stride, delta]
    for cp, delta in lower:
        if runs:
            r = runs[-1]
            if r[3] == delta:
                if r[0] == r[1] and cp - r[1] in (1, 2):
                    r[1], r[2] = cp, cp - r[0]
                    continue
                if r[0] != r[1] and cp - r[1] == r[2]:
                    r[1] = cp
                    continue
        runs.append([cp, cp, 1, delta])
    # Decompositions with the MN code points removed.
    decomps = []
    for cp in range(MAX_CP):
        if is_surrogate(cp) or 0xAC00 <= cp <= 0xD7A3 or cp in HF_NO_DECOMPOSITION:
            continue
        d = unicodedata.normalize("NFD", chr(cp))
        if d == chr(cp):
            continue
        kept = [ord(x) for x in d if not (flags[ord(x)] & FLAG_MN)]
        assert len(kept) <= 3, hex(cp)
        decomps.append((cp, kept))
    return flags, ranges, runs, decomps


# --- The C algorithm on these tables, for --check -------------------------------
def simulate_normalize(cp, flags, lower_map, decomp_map):
    """What datasets/tokenizer.c makes of the single code point cp (uncased)."""
    f = flags[cp]
    if cp == 0 or cp == 0xFFFD or f & FLAG_CONTROL:
        return ""
    if f & FLAG_WHITESPACE:
        return " "
    if 0xAC00 <= cp <= 0xD7A3:
        s = cp - 0xAC00
        pieces = [0x1100 + s // 588, 0x1161 + (s % 588) // 28]
        if s % 28:
            pieces.append(0x11A7 + s % 28)
    elif cp in decomp_map:
        pieces = decomp_map[cp]
    elif f & FLAG_MN:
        pieces = []
    else:
        pieces = [cp]
    out = ""
    for p in pieces:
        out += "i\u0307" if p == 0x130 else chr(lower_map.get(p, p))
    return " " + out + " " if is_cjk(cp) else out


def check(flags, runs, decomps):
    from tokenizers import __version__ as tok_version
    from tokenizers import normalizers, pre_tokenizers
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                            strip_accents=None, lowercase=True)
    pretok = pre_tokenizers.BertPreTokenizer()
    lower_map = {}
    for first, last, stride, delta in runs:
        for cp in range(first, last + 1, stride):
            lower_map[cp] = cp + delta
    decomp_map = dict(decomps)
    bad = 0
    for cp in range(MAX_CP):
        if is_surrogate(cp):
            continue
        ch = chr(cp)
        want = normalizer.normalize_str(ch)
        got = simulate_normalize(cp, flags, lower_map, decomp_map)
        if want != got:
            bad += 1
            print("normalize U+%04X %s: tokenizers %s, tables %s" %
                  (cp, unicodedata.category(ch), ascii(want), ascii(got)))
        toks = [t for t, _ in pretok.pre_tokenize_str("a" + ch + "b")]
        if toks == ["a", "b"]:
            want_class = FLAG_WHITESPACE
        elif toks == ["a", ch, "b"]:
            want_class = FLAG_PUNCT
        elif toks == ["a" + ch + "b"]:
            want_class = 0
        else:
            want_class = -1
        got_class = flags[cp] & FLAG_WHITESPACE or flags[cp] & FLAG_PUNCT
        if want_class != got_class:
            bad += 1
            print("pre-tokenize U+%04X %s: tokenizers %d, tables %d" %
                  (cp, unicodedata.category(ch), want_class, got_class))
    print("tokenizers %s: %d differences" % (tok_version, bad))
    return bad == 0


def emit(path, ranges, runs, decomps):
    lines = []
    w = lines.append
    w("/* datasets/unicode_tables.c — GENERATED by tools/gen_unicode_tables.py from")
    w(" * Python's unicodedata (Unicode %s) and White_Space; do not edit." % UNICODE_VERSION)
    w(" * The script's comment says what each table holds and why a few code")
    w(" * points differ from Unicode %s (agreement with Hugging Face tokenizers). */" %
      UNICODE_VERSION)
    w('#include "config.h"')
    w('#include "tokenizer_unicode.h"')
    w("")
    w("/* {first, last, flags}: CONTROL 1, WHITESPACE 2, PUNCT 4, MN 8; sorted,")
    w(" * disjoint; code points in no range have no flag. */")
    w("const lb_unicode_range lb_unicode_flag_ranges[] = {")
    for i in range(0, len(ranges), 4):
        w("    " + " ".join("{0x%X, 0x%X, %d}," % tuple(r) for r in ranges[i:i + 4]))
    w("};")
    w("const size_t lb_unicode_flag_ranges_count = %d;" % len(ranges))
    w("")
    w("/* Lower case: {first, last, stride, delta}: cp in first..last with")
    w(" * (cp - first) %% stride == 0 lowers to cp + delta; sorted, disjoint. */")
    w("const lb_unicode_case_run lb_unicode_lower_runs[] = {")
    for i in range(0, len(runs), 4):
        w("    " + " ".join("{0x%X, 0x%X, %d, %d}," % tuple(r) for r in runs[i:i + 4]))
    w("};")
    w("const size_t lb_unicode_lower_runs_count = %d;" % len(runs))
    w("")
    w("/* {cp, n, {out0, out1, out2}}: NFD(cp) without its Mn code points; sorted by cp;")
    w(" * Hangul syllables are decomposed in code. */")
    w("const lb_unicode_decomposition lb_unicode_decompositions[] = {")
    for i in range(0, len(decomps), 3):
        cells = []
        for cp, kept in decomps[i:i + 3]:
            k = kept + [0] * (3 - len(kept))
            cells.append("{0x%X, %d, {0x%X, 0x%X, 0x%X}}," % (cp, len(kept), k[0], k[1], k[2]))
        w("    " + " ".join(cells))
    w("};")
    w("const size_t lb_unicode_decompositions_count = %d;" % len(decomps))
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="datasets/unicode_tables.c")
    ap.add_argument("--check", action="store_true",
                    help="compare with the installed tokenizers package instead of writing")
    args = ap.parse_args()
    if unicodedata.unidata_version != UNICODE_VERSION:
        sys.exit("need unicodedata %s, this Python has %s" %
                 (UNICODE_VERSION, unicodedata.unidata_version))
    flags, ranges, runs, decomps = build_tables()
    if args.check:
        sys.exit(0 if check(flags, runs, decomps) else 1)
    emit(args.out, ranges, runs, decomps)
    print("%s: %d flag ranges, %d lower-case runs, %d decompositions" %
          (args.out, len(ranges), len(runs), len(decomps)))


if __name__ == "__main__":
    main()
