/* io/npy.c — NumPy .npy reader and writer (see include/lowbit/npy.h).
 *
 * Format (numpy/lib/format.py, "NEP 1"): the magic "\x93NUMPY", a major and
 * a minor version byte, the header length (little-endian uint16 for 1.0,
 * uint32 for 2.0 and 3.0), the header — the repr of a Python dict
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and a final '\n' so that the data starts at a multiple
 * of 64 bytes — then the raw array data.
 *
 * The reader parses the dict literal itself (no eval): keys and string
 * values in single or double quotes without escapes, True/False, tuples of
 * non-negative decimal integers. Version 3.0 (a UTF-8 header) is read like
 * 2.0; any header we accept is ASCII. The writer reproduces NumPy's bytes
 * exactly (same key order, the same spare spaces after the dict for
 * in-place growth, the same padding), so a round trip through NumPy gives
 * an identical file.
 */
#include "config.h"
#include "lowbit/npy.h"
#include "lowbit/alloc.h"
#include "file_util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lowbit's .npy code writes the host's bytes as little-endian data"
#endif

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* NumPy aligns the data to 64 bytes (ARRAY_ALIGN) and leaves room after the
 * dict for the growth axis to reach 21 digits (GROWTH_AXIS_MAX_DIGITS). */
enum { NPY_ARRAY_ALIGN = 64, NPY_GROWTH_AXIS_MAX_DIGITS = 21 };

/* The dtypes we handle, with the descr NumPy writes for each. */
static const struct {
    lb_dtype dtype;
    const char *descr;
} npy_dtypes[] = {
    {LB_F32, "<f4"}, {LB_F64, "<f8"}, {LB_S8, "|i1"}, {LB_S32, "<i4"}, {LB_U8, "|u1"},
};

/* ----------------------------------------------------------------- parsing */

/* What the header dict says. */
typedef struct npy_header {
    char descr[32];
    bool fortran_order;
    size_t ndim;                    /* may exceed LB_MAX_DIMS (then unsupported) */
    int64_t shape[LB_MAX_DIMS];     /* the first min(ndim, LB_MAX_DIMS) entries */
} npy_header;

typedef struct parser {
    lb_ctx *ctx;
    const char *path;
    const char *s; /* the header text (not NUL-terminated) */
    size_t n;
    size_t i;
} parser;

static lb_status parse_fail(parser *p, const char *what)
{
    /* Show a little of the text where parsing stopped (printable only). */
    char near[24];
    size_t k = 0;
    for (size_t j = p->i; j < p->n && k + 1 < sizeof near; j++)
        near[k++] = isprint((unsigned char)p->s[j]) ? p->s[j] : '?';
    near[k] = '\0';
    return lb_error(p->ctx, LB_ERR_FORMAT, "%s: bad .npy header: %s at header byte %zu%s%s%s",
                    p->path, what, p->i, k ? " (near '" : " (at its end)", near, k ? "')" : "");
}

static void skip_space(parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

static bool peek_is(parser *p, char c) { return p->i < p->n && p->s[p->i] == c; }

/* A Python string literal without escapes: '...' or "...". */
static lb_status parse_string(parser *p, const char **start, size_t *len)
{
    if (p->i >= p->n || (p->s[p->i] != '\'' && p->s[p->i] != '"'))
        return parse_fail(p, "expected a quoted string");
    char quote = p->s[p->i++];
    size_t begin = p->i;
    while (p->i < p->n && p->s[p->i] != quote) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '\\') return parse_fail(p, "escape sequences in strings are not allowed");
        if (c < 0x20 || c >= 0x7f) return parse_fail(p, "non-printable character in a string");
        p->i++;
    }
    if (p->i >= p->n) return parse_fail(p, "unterminated string");
    *start = p->s + begin;
    *len = p->i - begin;
    p->i++;
    return LB_OK;
}

static lb_status parse_bool(parser *p, bool *out)
{
    if (p->n - p->i >= 4 && memcmp(p->s + p->i, "True", 4) == 0) {
        p->i += 4;
        *out = true;
    } else if (p->n - p->i >= 5 && memcmp(p->s + p->i, "False", 5) == 0) {
        p->i += 5;
        *out = false;
    } else {
        return parse_fail(p, "'fortran_order' must be True or False");
    }
    /* "Truex" is a name, not True. */
    if (p->i < p->n && (isalnum((unsigned char)p->s[p->i]) || p->s[p->i] == '_'))
        return parse_fail(p, "'fortran_order' must be True or False");
    return LB_OK;
}

/* A non-negative decimal integer (an optional Python 2 'L' suffix allowed). */
static lb_status parse_dim(parser *p, int64_t *out)
{
    if (peek_is(p, '-')) return parse_fail(p, "negative dimension in 'shape'");
    if (p->i >= p->n || !isdigit((unsigned char)p->s[p->i]))
        return parse_fail(p, "expected a non-negative integer in 'shape'");
    if (p->s[p->i] == '0' && p->i + 1 < p->n && isdigit((unsigned char)p->s[p->i + 1]))
        return parse_fail(p, "integer with a leading zero in 'shape'");
    uint64_t v = 0;
    while (p->i < p->n && isdigit((unsigned char)p->s[p->i])) {
        unsigned d = (unsigned)(p->s[p->i] - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10) return parse_fail(p, "dimension overflows int64 in 'shape'");
        v = v * 10 + d;
        p->i++;
    }
    if (peek_is(p, 'L') || peek_is(p, 'l')) p->i++;
    if (p->i < p->n && (isalnum((unsigned char)p->s[p->i]) || p->s[p->i] == '_' || p->s[p->i] == '.'))
        return parse_fail(p, "expected a non-negative integer in 'shape'");
    *out = (int64_t)v;
    return LB_OK;
}

/* A Python tuple of dimensions: (), (n,), (n, m), (n, m,). */
static lb_status parse_shape(parser *p, npy_header *h)
{
    if (!peek_is(p, '(')) return parse_fail(p, "'shape' must be a tuple");
    p->i++;
    skip_space(p);
    h->ndim = 0;
    bool trailing_comma = false;
    while (!peek_is(p, ')')) {
        int64_t d = 0;
        lb_status st = parse_dim(p, &d);
        if (st != LB_OK) return st;
        if (h->ndim < LB_MAX_DIMS) h->shape[h->ndim] = d;
        h->ndim++;
        skip_space(p);
        trailing_comma = false;
        if (peek_is(p, ',')) {
            p->i++;
            trailing_comma = true;
            skip_space(p);
        } else if (!peek_is(p, ')')) {
            return parse_fail(p, "expected ',' or ')' in 'shape'");
        }
    }
    /* "(3)" is the integer 3 in Python, not a tuple. */
    if (h->ndim == 1 && !trailing_comma)
        return parse_fail(p, "'shape' (n) is an integer, not a tuple; NumPy writes (n,)");
    p->i++;
    return LB_OK;
}

static lb_status parse_header(parser *p, npy_header *h)
{
    memset(h, 0, sizeof *h);
    bool seen_descr = false, seen_order = false, seen_shape = false;
    skip_space(p);
    if (!peek_is(p, '{')) return parse_fail(p, "expected '{' (the header is not a dict)");
    p->i++;
    for (;;) {
        skip_space(p);
        if (peek_is(p, '}')) break;
        const char *key;
        size_t klen;
        lb_status st = parse_string(p, &key, &klen);
        if (st != LB_OK) return st;
        skip_space(p);
        if (!peek_is(p, ':')) return parse_fail(p, "expected ':' after a key");
        p->i++;
        skip_space(p);
        if (klen == 5 && memcmp(key, "descr", 5) == 0) {
            if (seen_descr) return parse_fail(p, "duplicate key 'descr'");
            seen_descr = true;
            if (peek_is(p, '['))
                return lb_error(p->ctx, LB_ERR_UNSUPPORTED,
                                "%s: structured dtypes (a list 'descr') are not supported", p->path);
            const char *v;
            size_t vlen;
            st = parse_string(p, &v, &vlen);
            if (st != LB_OK) return st;
            if (vlen >= sizeof h->descr) return parse_fail(p, "'descr' is too long to be a dtype");
            memcpy(h->descr, v, vlen);
            h->descr[vlen] = '\0';
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if (seen_order) return parse_fail(p, "duplicate key 'fortran_order'");
            seen_order = true;
            st = parse_bool(p, &h->fortran_order);
            if (st != LB_OK) return st;
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
            if (seen_shape) return parse_fail(p, "duplicate key 'shape'");
            seen_shape = true;
            st = parse_shape(p, h);
            if (st != LB_OK) return st;
        } else {
            return lb_error(p->ctx, LB_ERR_FORMAT,
                            "%s: bad .npy header: unexpected key '%.*s' (only 'descr', "
                            "'fortran_order' and 'shape' are allowed)",
                            p->path, (int)(klen > 40 ? 40 : klen), key);
        }
        skip_space(p);
        if (peek_is(p, ',')) {
            p->i++;
            continue;
        }
        if (!peek_is(p, '}')) return parse_fail(p, "expected ',' or '}' after a value");
    }
    p->i++; /* '}' */
    skip_space(p);
    if (p->i != p->n) return parse_fail(p, "unexpected text after the dict");
    const char *missing = !seen_descr ? "descr" : !seen_order ? "fortran_order" : !seen_shape ? "shape" : NULL;
    if (missing)
        return lb_error(p->ctx, LB_ERR_FORMAT, "%s: bad .npy header: missing key '%s'", p->path,
                        missing);
    return LB_OK;
}

/* Maps a descr to one of our dtypes. A descr that looks like a NumPy type
 * string ("<i8", ">f4", "|b1", "<U10", "|O") but is not one we handle is
 * LB_ERR_UNSUPPORTED; anything else is LB_ERR_FORMAT. */
static lb_status descr_to_dtype(lb_ctx *ctx, const char *path, const char *descr, lb_dtype *out)
{
    for (size_t i = 0; i < sizeof npy_dtypes / sizeof npy_dtypes[0]; i++) {
        if (strcmp(descr, npy_dtypes[i].descr) == 0) {
            *out = npy_dtypes[i].dtype;
            return LB_OK;
        }
    }
    /* Byte order is meaningless for one-byte types: accept every spelling. */
    if (strlen(descr) == 3 && strchr("<>|=", descr[0]) && descr[0] != '\0') {
        if (strcmp(descr + 1, "i1") == 0) {
            *out = LB_S8;
            return LB_OK;
        }
        if (strcmp(descr + 1, "u1") == 0) {
            *out = LB_U8;
            return LB_OK;
        }
    }
    if (descr[0] != '\0' && strchr("<>|=", descr[0]) && isalpha((unsigned char)descr[1])) {
        if (descr[0] == '>' && (strcmp(descr + 1, "f4") == 0 || strcmp(descr + 1, "f8") == 0 ||
                                strcmp(descr + 1, "i4") == 0))
            return lb_error(ctx, LB_ERR_UNSUPPORTED,
                            "%s: big-endian data ('%s') is not supported; use '<%s'", path, descr,
                            descr + 1);
        return lb_error(ctx, LB_ERR_UNSUPPORTED,
                        "%s: dtype '%s' is not supported (supported: <f4 <f8 |i1 <i4 |u1)", path,
                        descr);
    }
    return lb_error(ctx, LB_ERR_FORMAT, "%s: bad .npy header: 'descr' value '%s' is not a dtype",
                    path, descr);
}

/* "(2, 3)" for messages. */
static void format_shape(char *buf, size_t cap, size_t ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (size_t i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, ndim == 1 ? ",)" : ")");
}

lb_status lb_npy_read(lb_ctx *ctx, const char *path, lb_tensor **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "lb_npy_read: NULL output pointer");
    *out = NULL;
    if (!path) return lb_error(ctx, LB_ERR_ARG, "lb_npy_read: NULL path");
    int fd;
    uint64_t size;
    lb_status st = lb_io_open_read(ctx, path, &fd, &size);
    if (st != LB_OK) return st;

    char *header = NULL;
    lb_tensor *t = NULL;

    /* Preamble: magic (6), version (2), header length (2 or 4). */
    unsigned char pre[12];
    size_t have = size < sizeof pre ? (size_t)size : sizeof pre;
    st = lb_io_pread_full(ctx, path, fd, pre, have, 0);
    if (st != LB_OK) goto done;
    if (memcmp(pre, npy_magic, have < 6 ? have : 6) != 0) {
        st = lb_error(ctx, LB_ERR_FORMAT, "%s: not a .npy file (bad magic; expected \\x93NUMPY)",
                      path);
        goto done;
    }
    if (have < 8) {
        st = lb_error(ctx, LB_ERR_FORMAT, "%s: truncated .npy file: %llu bytes, the preamble alone needs at least 10",
                      path, (unsigned long long)size);
        goto done;
    }
    unsigned major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0) {
        st = lb_error(ctx, LB_ERR_FORMAT, "%s: unknown .npy format version %u.%u (known: 1.0, 2.0, 3.0)",
                      path, major, minor);
        goto done;
    }
    size_t prefix = major == 1 ? 10 : 12;
    if (have < prefix) {
        st = lb_error(ctx, LB_ERR_FORMAT,
                      "%s: truncated .npy file: %llu bytes, the version %u.0 preamble needs %zu",
                      path, (unsigned long long)size, major, prefix);
        goto done;
    }
    uint64_t header_len = major == 1 ? (uint64_t)pre[8] | (uint64_t)pre[9] << 8
                                     : (uint64_t)pre[8] | (uint64_t)pre[9] << 8 |
                                           (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    if (header_len > size - prefix) {
        st = lb_error(ctx, LB_ERR_FORMAT,
                      "%s: truncated .npy file: header length %llu exceeds the %llu bytes after "
                      "the preamble",
                      path, (unsigned long long)header_len, (unsigned long long)(size - prefix));
        goto done;
    }
    header = malloc(header_len ? (size_t)header_len : 1);
    if (!header) {
        st = lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory for a %llu-byte .npy header", path,
                      (unsigned long long)header_len);
        goto done;
    }
    st = lb_io_pread_full(ctx, path, fd, header, (size_t)header_len, prefix);
    if (st != LB_OK) goto done;

    npy_header h;
    parser p = {ctx, path, header, (size_t)header_len, 0};
    st = parse_header(&p, &h);
    if (st != LB_OK) goto done;

    lb_dtype dtype = LB_F32;
    st = descr_to_dtype(ctx, path, h.descr, &dtype);
    if (st != LB_OK) goto done;
    if (h.ndim > LB_MAX_DIMS) {
        st = lb_error(ctx, LB_ERR_UNSUPPORTED, "%s: %zu dimensions; at most %d are supported",
                      path, h.ndim, LB_MAX_DIMS);
        goto done;
    }
    /* Column-major and row-major coincide for 0 or 1 dimensions (NumPy
     * itself writes fortran_order False for those). */
    if (h.fortran_order && h.ndim > 1) {
        st = lb_error(ctx, LB_ERR_UNSUPPORTED,
                      "%s: Fortran-order (column-major) data is not supported; save a "
                      "C-contiguous array (numpy.ascontiguousarray)",
                      path);
        goto done;
    }
    char shape_text[128];
    format_shape(shape_text, sizeof shape_text, h.ndim, h.shape);
    size_t numel = 1, nbytes;
    for (size_t i = 0; i < h.ndim; i++) {
        if ((uint64_t)h.shape[i] > SIZE_MAX || !lb_mul_size(numel, (size_t)h.shape[i], &numel)) {
            st = lb_error(ctx, LB_ERR_FORMAT, "%s: shape %s: element count overflows", path,
                          shape_text);
            goto done;
        }
    }
    if (!lb_mul_size(numel, lb_dtype_size(dtype), &nbytes)) {
        st = lb_error(ctx, LB_ERR_FORMAT, "%s: shape %s of '%s': byte count overflows", path,
                      shape_text, h.descr);
        goto done;
    }
    uint64_t data_start = prefix + header_len, remaining = size - data_start;
    if ((uint64_t)nbytes > remaining) {
        st = lb_error(ctx, LB_ERR_FORMAT,
                      "%s: truncated .npy file: shape %s of '%s' needs %zu data bytes, the file "
                      "has %llu",
                      path, shape_text, h.descr, nbytes, (unsigned long long)remaining);
        goto done;
    }
    if ((uint64_t)nbytes < remaining) {
        st = lb_error(ctx, LB_ERR_FORMAT,
                      "%s: %llu unexpected bytes after the data (shape %s of '%s' needs %zu)",
                      path, (unsigned long long)(remaining - nbytes), shape_text, h.descr, nbytes);
        goto done;
    }
    st = lb_tensor_create(ctx, dtype, (int)h.ndim, h.shape, &t);
    if (st != LB_OK) goto done;
    st = lb_io_pread_full(ctx, path, fd, t->data, nbytes, data_start);
    if (st != LB_OK) goto done;
    *out = t;
    t = NULL;
done:
    lb_tensor_free(t);
    free(header);
    close(fd);
    return st;
}

/* ----------------------------------------------------------------- writing */

lb_status lb_npy_write(lb_ctx *ctx, const char *path, const lb_tensor *t)
{
    if (!path) return lb_error(ctx, LB_ERR_ARG, "lb_npy_write: NULL path");
    if (!t) return lb_error(ctx, LB_ERR_ARG, "%s: lb_npy_write: NULL tensor", path);
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof npy_dtypes / sizeof npy_dtypes[0]; i++)
        if (npy_dtypes[i].dtype == t->dtype) descr = npy_dtypes[i].descr;
    if (!descr) return lb_error(ctx, LB_ERR_ARG, "%s: unknown tensor dtype %d", path, (int)t->dtype);
    size_t nbytes;
    lb_status st = lb_shape_bytes(ctx, t->dtype, t->ndim, t->shape, NULL, &nbytes);
    if (st != LB_OK) return st;
    if (nbytes != t->nbytes)
        return lb_error(ctx, LB_ERR_ARG, "%s: tensor nbytes %zu does not match its shape (%zu)",
                        path, t->nbytes, nbytes);
    if (nbytes && !t->data) return lb_error(ctx, LB_ERR_ARG, "%s: tensor has no data", path);

    /* The dict exactly as numpy.lib.format._write_array_header builds it. */
    char dict[256];
    size_t k = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
    for (int i = 0; i < t->ndim; i++)
        k += (size_t)snprintf(dict + k, sizeof dict - k, i ? ", %" PRId64 : "%" PRId64, t->shape[i]);
    k += (size_t)snprintf(dict + k, sizeof dict - k, "%s), }", t->ndim == 1 ? "," : "");
    if (t->ndim > 0) {
        char first[24];
        int digits = snprintf(first, sizeof first, "%" PRId64, t->shape[0]);
        for (int s = 0; s < NPY_GROWTH_AXIS_MAX_DIGITS - digits; s++) dict[k++] = ' ';
    }
    /* Version 1.0 unless the padded header exceeds 65535 bytes (never with
     * at most 4 dimensions, but follow NumPy's rule). */
    size_t hlen = k + 1; /* + '\n' */
    unsigned char pre[12];
    memcpy(pre, npy_magic, 6);
    size_t prefix = 10;
    size_t padlen = NPY_ARRAY_ALIGN - (6 + 2 + 2 + hlen) % NPY_ARRAY_ALIGN;
    if (hlen + padlen > 65535) {
        prefix = 12;
        padlen = NPY_ARRAY_ALIGN - (6 + 2 + 4 + hlen) % NPY_ARRAY_ALIGN;
    }
    size_t total_header = hlen + padlen;
    pre[6] = prefix == 10 ? 1 : 2;
    pre[7] = 0;
    for (size_t b = 0; b < prefix - 8; b++) pre[8 + b] = (unsigned char)(total_header >> (8 * b));
    char header[256 + NPY_ARRAY_ALIGN + 1];
    memcpy(header, dict, k);
    memset(header + k, ' ', padlen);
    header[k + padlen] = '\n';

    lb_io_atomic a;
    st = lb_io_atomic_begin(ctx, path, &a);
    if (st != LB_OK) return st;
    st = lb_io_atomic_write(ctx, &a, pre, prefix);
    if (st == LB_OK) st = lb_io_atomic_write(ctx, &a, header, total_header);
    if (st == LB_OK) st = lb_io_atomic_write(ctx, &a, t->data, nbytes);
    if (st != LB_OK) {
        lb_io_atomic_abort(&a);
        return st;
    }
    return lb_io_atomic_commit(ctx, &a);
}
