/* datasets/text_named.c — the named text corpora and the corpus spec
 * parser behind `--corpus default|moby-dick|PATH[,PATH...]`.
 *
 * default  : Jane Austen's six novels, r-cran-janeaustenr 1.0.0-1. The
 *            package's data/Rdata.rdb is an R lazy-load database; the six
 *            books are the objects at the byte ranges below (the same as
 *            its Rdata.rdx index), each a character vector of lines
 *            (datasets/rdata.c). Joined with '\n' after every line they
 *            give 4,025,029 bytes (sha256 65b434d1...dcc96, checked by
 *            hand against the Rscript route). Validation = Persuasion.
 * moby-dick: mobydick.txt of golang-github-colinmarc-hdfs-dev 2.3.0-2,
 *            PG eBook #2701 with BOM, CRLF and Gutenberg boilerplate.
 * Both are fetched without installing anything by
 * scripts/fetch-corpus.sh (apt-get download + dpkg-deb -x into the cache
 * directory), or found where the package installs them.
 */
#include "config.h"
#include "lowbit/datasets.h"
#include "lowbit/alloc.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct named_corpus {
    const char *name;
    const char *description;
    const char *package;
    const char *relative_path; /* inside the package's file tree */
} named_corpus;

static const named_corpus named_corpora[] = {
    {"default", "Jane Austen's six novels", "r-cran-janeaustenr",
     "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"},
    {"moby-dick", "Moby-Dick (Project Gutenberg #2701)", "golang-github-colinmarc-hdfs-dev",
     "usr/share/gocode/src/github.com/colinmarc/hdfs/testdata/mobydick.txt"},
};

/* Where each book lies in Rdata.rdb and how many bytes it yields. */
static const struct {
    const char *name;
    size_t offset, length, text_bytes;
} austen_books[LB_AUSTEN_BOOKS] = {
    {"emma", 0, 352043, 883028},
    {"mansfieldpark", 352043, 351373, 883280},
    {"northangerabbey", 703416, 175196, 433411},
    {"persuasion", 878612, 185130, 466854},
    {"prideprejudice", 1063742, 271037, 684768},
    {"sensesensibility", 1334779, 266556, 673688},
};
#define AUSTEN_VALIDATION_BOOK 3 /* persuasion */

const char *lb_austen_book_name(int book)
{
    if (book < 0 || book >= LB_AUSTEN_BOOKS) return NULL;
    return austen_books[book].name;
}

lb_status lb_data_cache_dir(lb_ctx *ctx, char *buf, size_t size)
{
    if (!buf || size == 0) return lb_error(ctx, LB_ERR_ARG, "lb_data_cache_dir: no buffer");
    buf[0] = '\0';
    const char *data = getenv(LB_DATA_DIR_ENV);
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (data && *data) n = snprintf(buf, size, "%s", data);
    else if (xdg && *xdg) n = snprintf(buf, size, "%s/lowbit", xdg);
    else if (home && *home) n = snprintf(buf, size, "%s/.cache/lowbit", home);
    else
        return lb_error(ctx, LB_ERR_ARG,
                        "no data cache directory: set " LB_DATA_DIR_ENV " (HOME is not set)");
    if (n < 0 || (size_t)n >= size) {
        buf[0] = '\0';
        return lb_error(ctx, LB_ERR_ARG, "data cache directory name too long");
    }
    return LB_OK;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

lb_status lb_text_corpus_locate(lb_ctx *ctx, const char *name, char *buf, size_t size)
{
    if (!name || !buf || size == 0)
        return lb_error(ctx, LB_ERR_ARG, "lb_text_corpus_locate: NULL argument");
    const named_corpus *nc = NULL;
    for (size_t i = 0; i < sizeof named_corpora / sizeof named_corpora[0]; i++)
        if (strcmp(name, named_corpora[i].name) == 0) nc = &named_corpora[i];
    if (!nc) return lb_error(ctx, LB_ERR_ARG, "unknown corpus name '%s'", name);

    char cache[2048];
    bool have_cache = lb_data_cache_dir(NULL, cache, sizeof cache) == LB_OK;
    if (have_cache) {
        int n = snprintf(buf, size, "%s/%s/%s", cache, nc->package, nc->relative_path);
        if (n > 0 && (size_t)n < size && is_file(buf)) return LB_OK;
    }
    int n = snprintf(buf, size, "/%s", nc->relative_path);
    if (n > 0 && (size_t)n < size && is_file(buf)) return LB_OK;
    buf[0] = '\0';
    return lb_error(ctx, LB_ERR_NOT_FOUND,
                    "corpus '%s' (%s, Debian package %s) not found: looked for %s%s%s%s and /%s. "
                    "Run scripts/fetch-corpus.sh %s, or: apt-get download %s && "
                    "dpkg-deb -x %s_*.deb %s/%s",
                    nc->name, nc->description, nc->package, have_cache ? cache : "",
                    have_cache ? "/" : "", have_cache ? nc->package : "",
                    have_cache ? "/..." : "", nc->relative_path, nc->name, nc->package,
                    nc->package, have_cache ? cache : "$LOWBIT_DATA_DIR", nc->package);
}

lb_status lb_austen_read_books(lb_ctx *ctx, const char *rdb_path,
                               uint8_t *book_text[LB_AUSTEN_BOOKS],
                               size_t book_len[LB_AUSTEN_BOOKS])
{
    if (!rdb_path || !book_text || !book_len)
        return lb_error(ctx, LB_ERR_ARG, "lb_austen_read_books: NULL argument");
    for (int b = 0; b < LB_AUSTEN_BOOKS; b++) {
        book_text[b] = NULL;
        book_len[b] = 0;
    }
    uint8_t *rdb;
    size_t rdb_len;
    lb_status st = lb_text_read_file(ctx, rdb_path, &rdb, &rdb_len);
    if (st != LB_OK) return st;
    for (int b = 0; b < LB_AUSTEN_BOOKS && st == LB_OK; b++) {
        size_t off = austen_books[b].offset, len = austen_books[b].length;
        if (off > rdb_len || len > rdb_len - off) {
            st = lb_error(ctx, LB_ERR_FORMAT,
                          "%s: %zu bytes, too short for book %s at %zu+%zu (expected the "
                          "r-cran-janeaustenr 1.0.0 file of 1601335 bytes)",
                          rdb_path, rdb_len, austen_books[b].name, off, len);
            break;
        }
        size_t lines;
        st = lb_rdata_read_strings(ctx, rdb + off, len, &book_text[b], &book_len[b], &lines);
        if (st != LB_OK) {
            /* keep the parser's detail, prefixed with the file and book */
            char detail[512];
            snprintf(detail, sizeof detail, "%s", lb_ctx_error(ctx));
            st = lb_error(ctx, st, "%s: book %s: %s", rdb_path, austen_books[b].name, detail);
            break;
        }
        if (book_len[b] != austen_books[b].text_bytes)
            st = lb_error(ctx, LB_ERR_FORMAT,
                          "%s: book %s has %zu bytes, expected %zu (another package version?)",
                          rdb_path, austen_books[b].name, book_len[b],
                          austen_books[b].text_bytes);
    }
    lb_free(rdb);
    if (st != LB_OK) {
        for (int b = 0; b < LB_AUSTEN_BOOKS; b++) {
            lb_free(book_text[b]);
            book_text[b] = NULL;
            book_len[b] = 0;
        }
    }
    return st;
}

static lb_status load_austen(lb_ctx *ctx, double val_fraction, lb_text_corpus **out)
{
    char path[4096];
    lb_status st = lb_text_corpus_locate(ctx, "default", path, sizeof path);
    if (st != LB_OK) return st;
    uint8_t *books[LB_AUSTEN_BOOKS];
    size_t lens[LB_AUSTEN_BOOKS];
    st = lb_austen_read_books(ctx, path, books, lens);
    if (st != LB_OK) return st;
    uint8_t *parts[LB_AUSTEN_BOOKS];
    size_t part_len[LB_AUSTEN_BOOKS], train_len[LB_AUSTEN_BOOKS];
    size_t k = 0;
    if (val_fraction < 0) {
        /* the five training books in storage order, then Persuasion */
        for (int b = 0; b < LB_AUSTEN_BOOKS; b++) {
            if (b == AUSTEN_VALIDATION_BOOK) continue;
            parts[k] = books[b];
            part_len[k] = train_len[k] = lens[b];
            k++;
        }
        parts[k] = books[AUSTEN_VALIDATION_BOOK];
        part_len[k] = lens[AUSTEN_VALIDATION_BOOK];
        train_len[k] = 0;
        k++;
    } else {
        for (int b = 0; b < LB_AUSTEN_BOOKS && st == LB_OK; b++, k++) {
            size_t v;
            parts[k] = books[b];
            part_len[k] = lens[b];
            st = lb_text_split_sizes(ctx, lens[b], val_fraction, &train_len[k], &v);
        }
    }
    if (st == LB_OK) st = lb_text_corpus_from_parts(ctx, parts, part_len, train_len, k, out);
    for (int b = 0; b < LB_AUSTEN_BOOKS; b++) lb_free(books[b]);
    return st;
}

lb_status lb_text_corpus_load(lb_ctx *ctx, const char *spec, double val_fraction,
                              lb_text_corpus **out)
{
    if (!spec || !out) return lb_error(ctx, LB_ERR_ARG, "lb_text_corpus_load: NULL argument");
    *out = NULL;
    if (val_fraction >= 1.0 || val_fraction != val_fraction)
        return lb_error(ctx, LB_ERR_ARG, "validation fraction %g is not in [0, 1)", val_fraction);
    if (strcmp(spec, "default") == 0 || strcmp(spec, "austen") == 0)
        return load_austen(ctx, val_fraction, out);
    double f = val_fraction < 0 ? LB_TEXT_DEFAULT_VAL_FRACTION : val_fraction;
    if (strcmp(spec, "moby-dick") == 0) {
        char path[4096];
        lb_status st = lb_text_corpus_locate(ctx, "moby-dick", path, sizeof path);
        if (st != LB_OK) return st;
        const char *paths[1] = {path};
        return lb_text_corpus_load_files(ctx, paths, 1, f, out);
    }
    /* a comma-separated list of paths */
    size_t n = 1;
    for (const char *p = spec; *p; p++) n += *p == ',';
    char *copy = strdup(spec);
    const char **paths = calloc(n, sizeof *paths);
    if (!copy || !paths) {
        free(copy);
        free(paths);
        return lb_error(ctx, LB_ERR_NOMEM, "lb_text_corpus_load: out of memory");
    }
    size_t k = 0;
    char *start = copy;
    for (char *p = copy;; p++) {
        if (*p == ',' || *p == '\0') {
            bool last = *p == '\0';
            *p = '\0';
            paths[k++] = start;
            start = p + 1;
            if (last) break;
        }
    }
    lb_status st = lb_text_corpus_load_files(ctx, paths, k, f, out);
    free(copy);
    free(paths);
    return st;
}
