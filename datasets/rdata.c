/* datasets/rdata.c — reads a character vector out of an R lazy-load
 * database object (the .rdb file of an installed R package's data/).
 *
 * Layout of one object (R's src/main/serialize.c, R_compress1/R_decompress1
 * and "R Internals" §1.8):
 *   int32 BE  uncompressed length L
 *   zlib stream of L bytes of XDR serialization:
 *     "X\n"                          format: XDR (big-endian)
 *     int version (2 or 3), int writer R version, int minimal R version
 *     version 3 only: int n, n bytes of the native encoding ("UTF-8")
 *     int flags  (low byte = SEXP type, 16 = STRSXP; bit 8 object, bit 9
 *                 has attributes, bit 10 has tag; levels above bit 12)
 *     int length (−1 would announce a long vector: not supported)
 *     length x { int flags (low byte 9 = CHARSXP; levels carry the
 *                encoding bits), int n (−1 = NA_STRING), n bytes }
 *     the attributes, when bit 9 was set (ignored here)
 * Every length read from the blob is checked against the bytes left before
 * it is used; nothing is trusted.
 */
#include "config.h"
#include "lowbit/datasets.h"
#include "lowbit/alloc.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

#define R_STRSXP 16u
#define R_CHARSXP 9u
#define R_HAS_ATTR (1u << 9)
/* Refuse to inflate more than this: a corrupt length must not allocate GBs. */
#define RDATA_MAX_OBJECT ((size_t)1 << 30)

/* A bounds-checked big-endian reader over the inflated bytes. */
typedef struct xdr_reader {
    const uint8_t *data;
    size_t len, pos;
} xdr_reader;

static bool xdr_int(xdr_reader *r, int32_t *v)
{
    if (r->len - r->pos < 4) return false;
    const uint8_t *p = r->data + r->pos;
    *v = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                   (uint32_t)p[3]);
    r->pos += 4;
    return true;
}

lb_status lb_rdata_read_strings(lb_ctx *ctx, const uint8_t *blob, size_t blob_len,
                                uint8_t **text, size_t *text_len, size_t *num_lines)
{
    if (!blob || !text || !text_len || !num_lines)
        return lb_error(ctx, LB_ERR_ARG, "lb_rdata_read_strings: NULL argument");
    *text = NULL;
    *text_len = 0;
    *num_lines = 0;
    if (blob_len < 4)
        return lb_error(ctx, LB_ERR_FORMAT, "R object of %zu bytes is shorter than its header",
                        blob_len);
    size_t declared = (size_t)blob[0] << 24 | (size_t)blob[1] << 16 | (size_t)blob[2] << 8 |
                      (size_t)blob[3];
    if (declared > RDATA_MAX_OBJECT)
        return lb_error(ctx, LB_ERR_FORMAT, "R object declares %zu uncompressed bytes (limit %zu)",
                        declared, RDATA_MAX_OBJECT);
    if (blob_len - 4 > (size_t)ULONG_MAX)
        return lb_error(ctx, LB_ERR_FORMAT, "R object of %zu bytes is too large", blob_len);

    uint8_t *raw = lb_alloc(declared);
    if (!raw) return lb_error(ctx, LB_ERR_NOMEM, "R object: out of memory for %zu bytes", declared);
    uLongf raw_len = (uLongf)declared;
    int zr = uncompress(raw, &raw_len, blob + 4, (uLong)(blob_len - 4));
    if (zr != Z_OK || raw_len != declared) {
        lb_free(raw);
        if (zr == Z_MEM_ERROR) return lb_error(ctx, LB_ERR_NOMEM, "R object: zlib out of memory");
        return lb_error(ctx, LB_ERR_FORMAT,
                        "R object: zlib stream %s (declared length %zu)",
                        zr == Z_BUF_ERROR  ? "is truncated or longer than declared"
                        : zr == Z_DATA_ERROR ? "is corrupt"
                        : zr == Z_OK       ? "is shorter than declared"
                                           : "cannot be inflated",
                        declared);
    }

    xdr_reader r = {raw, declared, 0};
    lb_status st = LB_OK;
    int32_t version, writer, minimal, flags, count;
#define FAIL(...)                                      \
    do {                                               \
        st = lb_error(ctx, LB_ERR_FORMAT, __VA_ARGS__); \
        goto done;                                     \
    } while (0)
    if (declared < 2 || raw[0] != 'X' || raw[1] != '\n')
        FAIL("R object: not XDR serialization (does not start with \"X\\n\")");
    r.pos = 2;
    if (!xdr_int(&r, &version) || !xdr_int(&r, &writer) || !xdr_int(&r, &minimal))
        FAIL("R object: truncated serialization header");
    if (version != 2 && version != 3)
        FAIL("R object: serialization version %d (expected 2 or 3)", (int)version);
    if (version == 3) {
        int32_t enc_len;
        if (!xdr_int(&r, &enc_len) || enc_len < 0 || (size_t)enc_len > r.len - r.pos)
            FAIL("R object: bad native-encoding length at byte %zu", r.pos);
        r.pos += (size_t)enc_len;
    }
    if (!xdr_int(&r, &flags)) FAIL("R object: truncated before the object at byte %zu", r.pos);
    if (((uint32_t)flags & 0xffu) != R_STRSXP)
        FAIL("R object: type %u at byte %zu is not a character vector (STRSXP = 16)",
             (unsigned)((uint32_t)flags & 0xffu), r.pos - 4);
    const bool has_attributes = ((uint32_t)flags & R_HAS_ATTR) != 0;
    if (!xdr_int(&r, &count)) FAIL("R object: truncated vector length at byte %zu", r.pos);
    if (count < 0) FAIL("R object: vector length %d not supported (long vector?)", (int)count);
    /* each element takes at least 8 bytes */
    if ((size_t)count > (r.len - r.pos) / 8)
        FAIL("R object: vector length %d exceeds the %zu bytes left", (int)count, r.len - r.pos);

    /* Output is never longer than the input: an element of n bytes takes
     * 8 + n input bytes and n + 1 output bytes. */
    uint8_t *out = lb_alloc(declared);
    if (!out) {
        st = lb_error(ctx, LB_ERR_NOMEM, "R object: out of memory");
        goto done;
    }
    size_t out_len = 0, lines = 0;
    for (int32_t i = 0; i < count; i++) {
        int32_t eflags, n;
        size_t at = r.pos;
        if (!xdr_int(&r, &eflags) || !xdr_int(&r, &n)) {
            lb_free(out);
            FAIL("R object: element %d truncated at byte %zu", (int)i, at);
        }
        if (((uint32_t)eflags & 0xffu) != R_CHARSXP) {
            lb_free(out);
            FAIL("R object: element %d at byte %zu has type %u, not CHARSXP (9)", (int)i, at,
                 (unsigned)((uint32_t)eflags & 0xffu));
        }
        if (n == -1) continue; /* NA_STRING */
        if (n < 0 || (size_t)n > r.len - r.pos) {
            lb_free(out);
            FAIL("R object: element %d at byte %zu has length %d but %zu bytes are left", (int)i,
                 at, (int)n, r.len - r.pos);
        }
        memcpy(out + out_len, raw + r.pos, (size_t)n);
        out_len += (size_t)n;
        out[out_len++] = '\n';
        r.pos += (size_t)n;
        lines++;
    }
    if (!has_attributes && r.pos != r.len) {
        lb_free(out);
        FAIL("R object: %zu unexpected bytes after the vector", r.len - r.pos);
    }
    *text = out;
    *text_len = out_len;
    *num_lines = lines;
#undef FAIL
done:
    lb_free(raw);
    return st;
}
