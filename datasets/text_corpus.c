/* datasets/text_corpus.c — byte-level text corpora: reading plain-text
 * files, Gutenberg cleaning, the train/validation split, the byte histogram
 * and the unigram entropy.
 *
 * Tokens are bytes (vocabulary 256), so no tokenizer is involved and a
 * model's bits per byte compare directly with lb_unigram_entropy_bits of
 * the training split. Named corpora (the Austen default, moby-dick) are
 * located and read in datasets/text_named.c.
 */
#include "config.h"
#include "lowbit/datasets.h"
#include "lowbit/alloc.h"
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* True when the line starting at text[i] begins with `marker` (ASCII
 * letters compared case-insensitively). */
static bool line_starts_with(const uint8_t *text, size_t len, size_t i, const char *marker)
{
    size_t m = strlen(marker);
    if (len - i < m) return false;
    for (size_t k = 0; k < m; k++) {
        uint8_t a = text[i + k], b = (uint8_t)marker[k];
        if (a >= 'a' && a <= 'z') a = (uint8_t)(a - 'a' + 'A');
        if (b >= 'a' && b <= 'z') b = (uint8_t)(b - 'a' + 'A');
        if (a != b) return false;
    }
    return true;
}

/* Offset of the first line at or after `from` (which must be a line start)
 * that begins with marker, or len when none. */
static size_t find_marker_line(const uint8_t *text, size_t len, size_t from, const char *marker)
{
    size_t i = from;
    while (i < len) {
        if (line_starts_with(text, len, i, marker)) return i;
        const uint8_t *nl = memchr(text + i, '\n', len - i);
        if (!nl) break;
        i = (size_t)(nl - text) + 1;
    }
    return len;
}

size_t lb_text_clean_gutenberg(uint8_t *text, size_t len)
{
    if (!text) return 0;
    size_t begin = 0;
    if (len >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF) begin = 3;
    /* CR LF -> LF, compacting to the front */
    size_t w = 0;
    for (size_t r = begin; r < len; r++) {
        if (text[r] == '\r' && r + 1 < len && text[r + 1] == '\n') continue;
        text[w++] = text[r];
    }
    len = w;

    size_t start = 0, end = len;
    bool marked = false;
    size_t s = find_marker_line(text, len, 0, "*** START OF");
    if (s < len) {
        const uint8_t *nl = memchr(text + s, '\n', len - s);
        start = nl ? (size_t)(nl - text) + 1 : len;
        marked = true;
    }
    size_t e = find_marker_line(text, len, start, "*** END OF");
    if (e < len) {
        end = e;
        marked = true;
        /* the closing "End of [the] Project Gutenberg ..." line just before */
        size_t last = end;
        while (last > start && text[last - 1] == '\n') last--;
        while (last > start && text[last - 1] != '\n') last--;
        if (line_starts_with(text, end, last, "End of Project Gutenberg") ||
            line_starts_with(text, end, last, "End of the Project Gutenberg"))
            end = last;
    }
    if (marked) {
        while (start < end && text[start] == '\n') start++;
        while (end - start >= 2 && text[end - 1] == '\n' && text[end - 2] == '\n') end--;
    }
    if (start > 0) memmove(text, text + start, end - start);
    return end - start;
}

lb_status lb_text_split_sizes(lb_ctx *ctx, size_t len, double val_fraction, size_t *train_len,
                              size_t *val_len)
{
    if (!train_len || !val_len) return lb_error(ctx, LB_ERR_ARG, "lb_text_split_sizes: NULL argument");
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return lb_error(ctx, LB_ERR_ARG, "validation fraction %g is not in [0, 1)", val_fraction);
    size_t v = (size_t)floor(val_fraction * (double)len);
    if (v > len) v = len;
    *val_len = v;
    *train_len = len - v;
    return LB_OK;
}

lb_status lb_text_read_file(lb_ctx *ctx, const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return lb_error(ctx, LB_ERR_NOT_FOUND, "%s: no such file", path);
        return lb_error(ctx, LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return lb_error(ctx, LB_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = lb_alloc(size);
    if (!buf) {
        fclose(f);
        return lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = fread(buf, 1, size, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != size) {
        lb_free(buf);
        return lb_error(ctx, LB_ERR_IO, "%s: read %zu of %zu bytes", path, got, size);
    }
    *data = buf;
    *len = size;
    return LB_OK;
}

void lb_text_corpus_free(lb_text_corpus *corpus)
{
    if (!corpus) return;
    lb_free(corpus->train);
    lb_free(corpus->val);
    free(corpus);
}

lb_status lb_text_corpus_from_parts(lb_ctx *ctx, uint8_t *const *parts, const size_t *part_len,
                                    const size_t *train_len, size_t num_parts,
                                    lb_text_corpus **out)
{
    size_t total_train = 0, total_val = 0;
    for (size_t i = 0; i < num_parts; i++) {
        if (!lb_add_size(total_train, train_len[i], &total_train) ||
            !lb_add_size(total_val, part_len[i] - train_len[i], &total_val))
            return lb_error(ctx, LB_ERR_NOMEM, "text corpus too large");
    }
    lb_text_corpus *c = calloc(1, sizeof *c);
    if (!c) return lb_error(ctx, LB_ERR_NOMEM, "text corpus: out of memory");
    c->train = lb_alloc(total_train);
    c->val = lb_alloc(total_val);
    if (!c->train || !c->val) {
        lb_text_corpus_free(c);
        return lb_error(ctx, LB_ERR_NOMEM, "text corpus: out of memory for %zu bytes",
                        total_train + total_val);
    }
    for (size_t i = 0; i < num_parts; i++) {
        memcpy(c->train + c->train_len, parts[i], train_len[i]);
        c->train_len += train_len[i];
        memcpy(c->val + c->val_len, parts[i] + train_len[i], part_len[i] - train_len[i]);
        c->val_len += part_len[i] - train_len[i];
    }
    c->num_parts = num_parts;
    *out = c;
    return LB_OK;
}

lb_status lb_text_corpus_load_files(lb_ctx *ctx, const char *const *paths, size_t num_paths,
                                    double val_fraction, lb_text_corpus **out)
{
    if (!paths || !out || num_paths == 0)
        return lb_error(ctx, LB_ERR_ARG, "lb_text_corpus_load_files: no files");
    *out = NULL;
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return lb_error(ctx, LB_ERR_ARG, "validation fraction %g is not in [0, 1)", val_fraction);
    uint8_t **parts = calloc(num_paths, sizeof *parts);
    size_t *lens = calloc(num_paths, sizeof *lens);
    size_t *train = calloc(num_paths, sizeof *train);
    lb_status st = LB_OK;
    if (!parts || !lens || !train) st = lb_error(ctx, LB_ERR_NOMEM, "text corpus: out of memory");
    for (size_t i = 0; st == LB_OK && i < num_paths; i++) {
        if (!paths[i] || !*paths[i]) {
            st = lb_error(ctx, LB_ERR_ARG, "empty file name in the corpus list");
            break;
        }
        st = lb_text_read_file(ctx, paths[i], &parts[i], &lens[i]);
        if (st != LB_OK) break;
        lens[i] = lb_text_clean_gutenberg(parts[i], lens[i]);
        if (lens[i] == 0) {
            st = lb_error(ctx, LB_ERR_FORMAT, "%s: no text (empty after cleaning)", paths[i]);
            break;
        }
        size_t v;
        st = lb_text_split_sizes(ctx, lens[i], val_fraction, &train[i], &v);
    }
    if (st == LB_OK) st = lb_text_corpus_from_parts(ctx, parts, lens, train, num_paths, out);
    if (parts)
        for (size_t i = 0; i < num_paths; i++) lb_free(parts[i]);
    free(parts);
    free(lens);
    free(train);
    return st;
}

void lb_byte_histogram(const uint8_t *data, size_t len, uint64_t counts[LB_TEXT_VOCAB])
{
    for (int v = 0; v < LB_TEXT_VOCAB; v++) counts[v] = 0;
    for (size_t i = 0; i < len; i++) counts[data[i]]++;
}

double lb_unigram_entropy_bits(const uint64_t counts[LB_TEXT_VOCAB])
{
    uint64_t total = 0;
    for (int v = 0; v < LB_TEXT_VOCAB; v++) total += counts[v];
    if (total == 0) return 0.0;
    double h = 0.0;
    for (int v = 0; v < LB_TEXT_VOCAB; v++) {
        if (!counts[v]) continue;
        double p = (double)counts[v] / (double)total;
        h -= p * log2(p);
    }
    return h;
}
