/* datasets/tokenizer.c — BERT WordPiece tokenizer, id for id the same as
 * Hugging Face's BertTokenizerFast of all-MiniLM-L6-v2 (tokenizers 0.19.1):
 * special-token split, BertNormalizer (clean_text, handle_chinese_chars,
 * strip_accents, lowercase), BertPreTokenizer (white space, punctuation),
 * WordPiece (greedy longest match, "##" continuation, [UNK] for words over
 * max_input_chars_per_word = 100 characters or with an unmatched position),
 * TemplateProcessing "[CLS] $A [SEP]" and longest-first truncation, which
 * for one sequence keeps the first max_len - 2 pieces.
 *
 * The text is processed in one pass, code point by code point: each input
 * code point is normalised into 0..5 code points, which go straight into the
 * current word; a word is handed to WordPiece when white space, punctuation,
 * a special token or the end of the text closes it. So memory does not grow
 * with the text, and encode() can stop as soon as the kept ids are known.
 * The per-code-point normalisation equals Hugging Face's whole-string NFD
 * except for canonical reordering of combining marks, which can only matter
 * for marks that are kept (not Mn) and stand next to each other.
 *
 * Vocabulary: tokens in one blob, an open-addressing hash table (FNV-1a,
 * linear probing, load <= 1/2) from token bytes to id; a "##" continuation
 * is hashed and compared without building the string.
 */
#include "config.h"
#include "lowbit/tokenizer.h"
#include "lowbit/alloc.h"
#include "tokenizer_unicode.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const special_names[LB_TOKEN_SPECIAL_COUNT] = {"[PAD]", "[UNK]", "[CLS]",
                                                                  "[SEP]", "[MASK]"};
#define CONTINUATION "##"
#define CONTINUATION_LEN 2
/* Guard on config.max_word_chars (Hugging Face uses 100). */
#define MAX_WORD_CHARS_LIMIT (1 << 20)

struct lb_tokenizer {
    lb_tokenizer_config cfg;
    bool strip_accents; /* cfg.strip_accents resolved */
    size_t num_tokens;
    char *blob;         /* (blob bytes) every token followed by NUL */
    size_t *offsets;    /* (num_tokens + 1) token i = blob + offsets[i] */
    uint32_t *slots;    /* (mask + 1) id + 1 of a token, 0 = empty */
    size_t mask;
    int32_t special[LB_TOKEN_SPECIAL_COUNT];
};

void lb_tokenizer_config_default(lb_tokenizer_config *cfg)
{
    if (!cfg) return;
    cfg->lowercase = true;
    cfg->strip_accents = -1;
    cfg->clean_text = true;
    cfg->split_cjk = true;
    cfg->split_special_tokens = true;
    cfg->max_word_chars = LB_TOKENIZER_MAX_WORD_CHARS;
}

/* ---- vocabulary -------------------------------------------------------- */

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv_bytes(uint64_t h, const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++) h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

static uint64_t token_hash(bool continuation, const uint8_t *s, size_t len)
{
    uint64_t h = FNV_OFFSET;
    if (continuation) h = fnv_bytes(h, (const uint8_t *)CONTINUATION, CONTINUATION_LEN);
    return fnv_bytes(h, s, len);
}

static size_t token_len(const lb_tokenizer *tok, size_t id)
{
    return tok->offsets[id + 1] - tok->offsets[id] - 1;
}

/* Id of ("##" if continuation) + s[0..len), or -1. */
static int32_t vocab_find(const lb_tokenizer *tok, bool continuation, const uint8_t *s,
                          size_t len)
{
    size_t full = len + (continuation ? CONTINUATION_LEN : 0);
    size_t i = (size_t)token_hash(continuation, s, len) & tok->mask;
    for (;;) {
        uint32_t slot = tok->slots[i];
        if (slot == 0) return -1;
        size_t id = slot - 1;
        if (token_len(tok, id) == full) {
            const char *t = tok->blob + tok->offsets[id];
            if (continuation) {
                if (memcmp(t, CONTINUATION, CONTINUATION_LEN) == 0 &&
                    memcmp(t + CONTINUATION_LEN, s, len) == 0)
                    return (int32_t)id;
            } else if (memcmp(t, s, len) == 0) {
                return (int32_t)id;
            }
        }
        i = (i + 1) & tok->mask;
    }
}

static lb_status check_config(lb_ctx *ctx, const lb_tokenizer_config *cfg)
{
    if (cfg->strip_accents < -1 || cfg->strip_accents > 1)
        return lb_error(ctx, LB_ERR_ARG, "tokenizer: strip_accents must be -1, 0 or 1, not %d",
                        cfg->strip_accents);
    if (cfg->max_word_chars < 1 || cfg->max_word_chars > MAX_WORD_CHARS_LIMIT)
        return lb_error(ctx, LB_ERR_ARG, "tokenizer: max_word_chars must be in [1, %d], not %d",
                        MAX_WORD_CHARS_LIMIT, cfg->max_word_chars);
    return LB_OK;
}

/* Tokens as (pointer, length) pairs; token i gets id i. */
typedef struct token_source {
    const uint8_t *const *ptrs;
    const size_t *lens;
} token_source;

/* Validates the tokens and builds the tokenizer; `where` and `unit` name
 * the source in errors (the file and "line", numbered from unit_base). */
static lb_status build(lb_ctx *ctx, const token_source *src, size_t n,
                       const lb_tokenizer_config *cfg, const char *where, const char *unit,
                       size_t unit_base, lb_tokenizer **out)
{
    lb_tokenizer_config defaults;
    if (!cfg) {
        lb_tokenizer_config_default(&defaults);
        cfg = &defaults;
    }
    lb_status st = check_config(ctx, cfg);
    if (st != LB_OK) return st;
    if (n == 0) return lb_error(ctx, LB_ERR_FORMAT, "%s: the vocabulary is empty", where);
    if (n > (size_t)INT32_MAX)
        return lb_error(ctx, LB_ERR_FORMAT, "%s: %zu tokens, more than %d", where, n, INT32_MAX);
    size_t blob_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = src->lens[i];
        if (len == 0)
            return lb_error(ctx, LB_ERR_FORMAT, "%s: %s %zu is empty", where, unit, i + unit_base);
        if (len > LB_TOKENIZER_MAX_TOKEN_BYTES)
            return lb_error(ctx, LB_ERR_FORMAT, "%s: %s %zu: token of %zu bytes (limit %d)", where,
                            unit, i + unit_base, len, LB_TOKENIZER_MAX_TOKEN_BYTES);
        if (memchr(src->ptrs[i], '\0', len) || memchr(src->ptrs[i], '\n', len))
            return lb_error(ctx, LB_ERR_FORMAT, "%s: %s %zu: token holds a NUL or line feed",
                            where, unit, i + unit_base);
        if (!lb_utf8_valid(src->ptrs[i], len))
            return lb_error(ctx, LB_ERR_FORMAT, "%s: %s %zu: token is not valid UTF-8", where,
                            unit, i + unit_base);
        blob_bytes += len + 1;
    }
    size_t slots = 16;
    while (slots < 2 * n) slots *= 2;

    lb_tokenizer *tok = lb_calloc(1, sizeof *tok);
    if (!tok) return lb_error(ctx, LB_ERR_NOMEM, "tokenizer: out of memory");
    tok->cfg = *cfg;
    tok->strip_accents = cfg->strip_accents < 0 ? cfg->lowercase : cfg->strip_accents == 1;
    tok->num_tokens = n;
    tok->blob = lb_alloc(blob_bytes);
    tok->offsets = lb_calloc(n + 1, sizeof *tok->offsets);
    tok->slots = lb_calloc(slots, sizeof *tok->slots);
    tok->mask = slots - 1;
    if (!tok->blob || !tok->offsets || !tok->slots) {
        lb_tokenizer_free(tok);
        return lb_error(ctx, LB_ERR_NOMEM, "tokenizer: out of memory for %zu tokens", n);
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = src->ptrs[i];
        size_t len = src->lens[i];
        int32_t dup = vocab_find(tok, false, s, len);
        if (dup >= 0) {
            lb_tokenizer_free(tok);
            return lb_error(ctx, LB_ERR_FORMAT, "%s: %s %zu: token '%.*s' repeats %s %zu", where,
                            unit, i + unit_base, (int)len, (const char *)s, unit,
                            (size_t)dup + unit_base);
        }
        tok->offsets[i] = pos;
        memcpy(tok->blob + pos, s, len);
        tok->blob[pos + len] = '\0';
        pos += len + 1;
        tok->offsets[i + 1] = pos;
        size_t h = (size_t)token_hash(false, s, len) & tok->mask;
        while (tok->slots[h] != 0) h = (h + 1) & tok->mask;
        tok->slots[h] = (uint32_t)(i + 1);
    }
    for (int k = 0; k < LB_TOKEN_SPECIAL_COUNT; k++) {
        tok->special[k] = vocab_find(tok, false, (const uint8_t *)special_names[k],
                                     strlen(special_names[k]));
        if (tok->special[k] < 0 && k != LB_TOKEN_MASK) {
            lb_tokenizer_free(tok);
            return lb_error(ctx, LB_ERR_FORMAT, "%s: the vocabulary has no %s token", where,
                            special_names[k]);
        }
    }
    *out = tok;
    return LB_OK;
}

lb_status lb_tokenizer_create(lb_ctx *ctx, const char *const *tokens, size_t num_tokens,
                              const lb_tokenizer_config *cfg, lb_tokenizer **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_create: NULL out");
    *out = NULL;
    if (!tokens && num_tokens) return lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_create: NULL tokens");
    const uint8_t **ptrs = lb_calloc(num_tokens ? num_tokens : 1, sizeof *ptrs);
    size_t *lens = lb_calloc(num_tokens ? num_tokens : 1, sizeof *lens);
    lb_status st;
    if (!ptrs || !lens) {
        st = lb_error(ctx, LB_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    for (size_t i = 0; i < num_tokens; i++) {
        if (!tokens[i]) {
            st = lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_create: token %zu is NULL", i);
            goto done;
        }
        ptrs[i] = (const uint8_t *)tokens[i];
        lens[i] = strlen(tokens[i]);
    }
    token_source src = {ptrs, lens};
    st = build(ctx, &src, num_tokens, cfg, "vocabulary", "token", 0, out);
done:
    lb_free(ptrs);
    lb_free(lens);
    return st;
}

lb_status lb_tokenizer_load(lb_ctx *ctx, const char *vocab_path, const lb_tokenizer_config *cfg,
                            lb_tokenizer **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_load: NULL out");
    *out = NULL;
    if (!vocab_path) return lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_load: NULL path");
    FILE *f = fopen(vocab_path, "rb");
    if (!f)
        return lb_error(ctx, errno == ENOENT ? LB_ERR_NOT_FOUND : LB_ERR_IO,
                        "vocabulary %s: cannot open: %s", vocab_path, strerror(errno));
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    lb_status st = LB_OK;
    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap ? cap * 2 : 262144;
            uint8_t *nd = lb_alloc(ncap);
            if (!nd) {
                st = lb_error(ctx, LB_ERR_NOMEM, "vocabulary %s: out of memory", vocab_path);
                break;
            }
            if (len) memcpy(nd, data, len);
            lb_free(data);
            data = nd;
            cap = ncap;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                st = lb_error(ctx, LB_ERR_IO, "vocabulary %s: read error", vocab_path);
            break;
        }
    }
    fclose(f);
    const uint8_t **ptrs = NULL;
    size_t *lens = NULL;
    if (st != LB_OK) goto done;

    /* Lines: LF separated, a CR before the LF dropped, a final LF optional. */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += data[i] == '\n';
    if (len > 0 && data[len - 1] != '\n') n++;
    ptrs = lb_calloc(n ? n : 1, sizeof *ptrs);
    lens = lb_calloc(n ? n : 1, sizeof *lens);
    if (!ptrs || !lens) {
        st = lb_error(ctx, LB_ERR_NOMEM, "vocabulary %s: out of memory", vocab_path);
        goto done;
    }
    size_t line = 0, start = 0;
    for (size_t i = 0; i <= len && line < n; i++) {
        if (i == len || data[i] == '\n') {
            size_t end = i;
            if (end > start && data[end - 1] == '\r') end--;
            ptrs[line] = data + start;
            lens[line] = end - start;
            line++;
            start = i + 1;
        }
    }
    token_source src = {ptrs, lens};
    /* Errors name the file and the 1-based line. */
    st = build(ctx, &src, n, cfg, vocab_path, "line", 1, out);
done:
    lb_free(ptrs);
    lb_free(lens);
    lb_free(data);
    return st;
}

void lb_tokenizer_free(lb_tokenizer *tok)
{
    if (!tok) return;
    lb_free(tok->blob);
    lb_free(tok->offsets);
    lb_free(tok->slots);
    lb_free(tok);
}

size_t lb_tokenizer_vocab_size(const lb_tokenizer *tok) { return tok ? tok->num_tokens : 0; }

const lb_tokenizer_config *lb_tokenizer_get_config(const lb_tokenizer *tok)
{
    return tok ? &tok->cfg : NULL;
}

int32_t lb_tokenizer_token_to_id(const lb_tokenizer *tok, const char *token)
{
    if (!tok || !token) return -1;
    return vocab_find(tok, false, (const uint8_t *)token, strlen(token));
}

const char *lb_tokenizer_id_to_token(const lb_tokenizer *tok, int32_t id)
{
    if (!tok || id < 0 || (size_t)id >= tok->num_tokens) return NULL;
    return tok->blob + tok->offsets[id];
}

int32_t lb_tokenizer_special_id(const lb_tokenizer *tok, lb_special_token which)
{
    if (!tok || (int)which < 0 || which >= LB_TOKEN_SPECIAL_COUNT) return -1;
    return tok->special[which];
}

/* ---- tokenizing -------------------------------------------------------- */

/* Where ids go: the first cap are stored, all are counted; with stop, the
 * pass ends once cap ids are stored. */
typedef struct id_sink {
    int32_t *ids; /* (cap) */
    size_t cap, count;
    bool stop, full;
} id_sink;

static void sink_put(id_sink *sink, int32_t id)
{
    if (sink->count < sink->cap) sink->ids[sink->count] = id;
    sink->count++;
    if (sink->stop && sink->count >= sink->cap) sink->full = true;
}

/* The word being built and WordPiece's scratch, sized by max_word_chars. */
typedef struct word_state {
    const lb_tokenizer *tok;
    id_sink *sink;
    size_t max_chars;
    size_t chars;      /* code points in the word (may exceed max_chars) */
    uint32_t *cps;     /* (max_chars) the first code points */
    uint8_t *bytes;    /* (4 max_chars) their UTF-8 */
    size_t *offsets;   /* (max_chars + 1) byte offset of each code point */
    int32_t *pieces;   /* (max_chars) WordPiece ids of the word */
} word_state;

static void wordpiece(word_state *w)
{
    const lb_tokenizer *tok = w->tok;
    size_t n = w->chars;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        w->offsets[i] = pos;
        pos += lb_utf8_encode(w->cps[i], w->bytes + pos);
    }
    w->offsets[n] = pos;
    size_t num_pieces = 0, start = 0;
    while (start < n) {
        int32_t id = -1;
        size_t end = n;
        for (; end > start; end--) {
            id = vocab_find(tok, start > 0, w->bytes + w->offsets[start],
                            w->offsets[end] - w->offsets[start]);
            if (id >= 0) break;
        }
        if (id < 0) { /* nothing matches at `start`: the whole word is [UNK] */
            sink_put(w->sink, tok->special[LB_TOKEN_UNK]);
            return;
        }
        w->pieces[num_pieces++] = id;
        start = end;
    }
    for (size_t i = 0; i < num_pieces && !w->sink->full; i++) sink_put(w->sink, w->pieces[i]);
}

static void word_flush(word_state *w)
{
    if (w->chars == 0) return;
    if (w->chars > w->max_chars) sink_put(w->sink, w->tok->special[LB_TOKEN_UNK]);
    else wordpiece(w);
    w->chars = 0;
}

/* Step 5 for one normalised code point. */
static void word_feed(word_state *w, uint32_t cp)
{
    uint32_t flags = lb_unicode_flags(cp);
    if (flags & LB_UNI_WHITESPACE) {
        word_flush(w);
    } else if (flags & LB_UNI_PUNCT) {
        word_flush(w);
        w->cps[0] = cp;
        w->chars = 1;
        word_flush(w);
    } else {
        if (w->chars < w->max_chars) w->cps[w->chars] = cp;
        w->chars++;
    }
}

/* Steps 3-4 for one code point of the text, then step 5. */
static void lower_and_feed(word_state *w, uint32_t cp)
{
    if (!w->tok->cfg.lowercase) {
        word_feed(w, cp);
    } else if (cp == 0x130) { /* LATIN CAPITAL LETTER I WITH DOT ABOVE: "i\u0307" */
        word_feed(w, 'i');
        word_feed(w, 0x307);
    } else {
        word_feed(w, lb_unicode_lower(cp));
    }
}

/* Steps 1-5 for one code point of the text. */
static void normalize_and_feed(word_state *w, uint32_t cp)
{
    const lb_tokenizer *tok = w->tok;
    if (tok->cfg.clean_text) {
        uint32_t flags = lb_unicode_flags(cp);
        if (cp == 0 || cp == 0xFFFD || (flags & LB_UNI_CONTROL)) return;
        if (flags & LB_UNI_WHITESPACE) {
            word_feed(w, ' ');
            return;
        }
    }
    bool cjk = tok->cfg.split_cjk && lb_unicode_is_cjk(cp);
    if (cjk) word_feed(w, ' ');
    if (tok->strip_accents) {
        uint32_t parts[LB_UNI_MAX_DECOMPOSITION];
        int k = lb_unicode_decompose_stripped(cp, parts);
        if (k >= 0) {
            for (int i = 0; i < k; i++) lower_and_feed(w, parts[i]);
        } else if (!(lb_unicode_flags(cp) & LB_UNI_MN)) {
            lower_and_feed(w, cp);
        }
    } else {
        lower_and_feed(w, cp);
    }
    if (cjk) word_feed(w, ' ');
}

/* The special token whose name starts at text[i..len), or -1. */
static int special_at(const lb_tokenizer *tok, const uint8_t *text, size_t i, size_t len)
{
    if (text[i] != '[') return -1;
    for (int k = 0; k < LB_TOKEN_SPECIAL_COUNT; k++) {
        if (tok->special[k] < 0) continue;
        size_t n = strlen(special_names[k]);
        if (len - i >= n && memcmp(text + i, special_names[k], n) == 0) return k;
    }
    return -1;
}

static lb_status run(lb_ctx *ctx, const lb_tokenizer *tok, const char *text, size_t len,
                     id_sink *sink)
{
    word_state w = {0};
    w.tok = tok;
    w.sink = sink;
    w.max_chars = (size_t)tok->cfg.max_word_chars;
    w.cps = lb_alloc(w.max_chars * sizeof *w.cps);
    w.bytes = lb_alloc(4 * w.max_chars);
    w.offsets = lb_alloc((w.max_chars + 1) * sizeof *w.offsets);
    w.pieces = lb_alloc(w.max_chars * sizeof *w.pieces);
    lb_status st = LB_OK;
    if (!w.cps || !w.bytes || !w.offsets || !w.pieces) {
        st = lb_error(ctx, LB_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    while (i < len && !sink->full) {
        int k = tok->cfg.split_special_tokens ? special_at(tok, s, i, len) : -1;
        if (k >= 0) {
            word_flush(&w);
            if (!sink->full) sink_put(sink, tok->special[k]);
            i += strlen(special_names[k]);
            continue;
        }
        uint32_t cp;
        i += lb_utf8_decode(s + i, len - i, &cp);
        normalize_and_feed(&w, cp);
    }
    if (!sink->full) word_flush(&w);
done:
    lb_free(w.cps);
    lb_free(w.bytes);
    lb_free(w.offsets);
    lb_free(w.pieces);
    return st;
}

lb_status lb_tokenizer_tokenize(lb_ctx *ctx, const lb_tokenizer *tok, const char *text,
                                size_t len, int32_t *ids, size_t cap, size_t *num_ids)
{
    if (!tok || !num_ids || (!text && len) || (!ids && cap))
        return lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_tokenize: NULL argument");
    *num_ids = 0;
    id_sink sink = {ids, cap, 0, false, false};
    lb_status st = run(ctx, tok, text ? text : "", len, &sink);
    if (st == LB_OK) *num_ids = sink.count;
    return st;
}

lb_status lb_tokenizer_encode(lb_ctx *ctx, const lb_tokenizer *tok, const char *text, size_t len,
                              size_t max_len, int32_t *ids, uint8_t *mask, size_t *length)
{
    if (!tok || !ids || !length || (!text && len))
        return lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_encode: NULL argument");
    if (max_len < 2)
        return lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_encode: max_len %zu < 2 ([CLS] and [SEP])",
                        max_len);
    *length = 0;
    size_t keep = max_len - 2;
    id_sink sink = {ids + 1, keep, 0, true, keep == 0};
    lb_status st = run(ctx, tok, text ? text : "", len, &sink);
    if (st != LB_OK) return st;
    size_t n = sink.count < keep ? sink.count : keep;
    ids[0] = tok->special[LB_TOKEN_CLS];
    ids[n + 1] = tok->special[LB_TOKEN_SEP];
    for (size_t t = n + 2; t < max_len; t++) ids[t] = tok->special[LB_TOKEN_PAD];
    if (mask)
        for (size_t t = 0; t < max_len; t++) mask[t] = t < n + 2;
    *length = n + 2;
    return LB_OK;
}

lb_status lb_tokenizer_encode_batch(lb_ctx *ctx, const lb_tokenizer *tok,
                                    const char *const *texts, const size_t *lens, size_t batch,
                                    size_t max_len, int32_t *ids, uint8_t *mask,
                                    size_t *lengths, size_t *T_out)
{
    if (!tok || !texts || !ids || !T_out)
        return lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_encode_batch: NULL argument");
    *T_out = 0;
    size_t T = 2;
    for (size_t b = 0; b < batch; b++) {
        if (!texts[b])
            return lb_error(ctx, LB_ERR_ARG, "lb_tokenizer_encode_batch: text %zu is NULL", b);
        size_t n;
        lb_status st = lb_tokenizer_encode(ctx, tok, texts[b], lens ? lens[b] : strlen(texts[b]),
                                           max_len, ids + b * max_len,
                                           mask ? mask + b * max_len : NULL, &n);
        if (st != LB_OK) return st;
        if (lengths) lengths[b] = n;
        if (n > T) T = n;
    }
    /* Rows from stride max_len to stride T (T <= max_len: moving forward in
     * order never overwrites a row not yet moved). */
    for (size_t b = 1; b < batch && T < max_len; b++) {
        memmove(ids + b * T, ids + b * max_len, T * sizeof *ids);
        if (mask) memmove(mask + b * T, mask + b * max_len, T);
    }
    *T_out = batch ? T : 0;
    return LB_OK;
}
