/* io/safetensors.c — safetensors reader and writer (see
 * include/lowbit/safetensors.h for the format and the rules enforced).
 *
 * Reading: the 8-byte length and the JSON header are read and validated in
 * full at open time (cJSON parses, this file checks every value); tensor
 * data are read on demand with pread from the descriptor kept open.
 * Writing: tensors are copied into the writer as they are added; save
 * builds the compact JSON header by hand (so offsets are printed as exact
 * integers and the key order is ours), pads it with spaces to a multiple
 * of 8 bytes and writes header + data through io/file_util's atomic file.
 */
#include "config.h"
#include "lowbit/safetensors.h"
#include "lowbit/alloc.h"
#include "file_util.h"

#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lowbit's safetensors code reads and writes the host's bytes as little-endian data"
#endif

/* JSON numbers are doubles: integers above 2^53 are not exact. */
#define ST_MAX_JSON_INT 9007199254740992.0

/* Every byte-sized dtype of the format; `lb` is the lowbit dtype it is read
 * as, or -1 when lowbit cannot convert it. */
typedef struct st_dtype {
    const char *name;
    size_t size;
    int lb;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 4, LB_F32},  {"F64", 8, LB_F64}, {"I8", 1, LB_S8},       {"I32", 4, LB_S32},
    {"U8", 1, LB_U8},    {"BF16", 2, LB_F32}, {"BOOL", 1, -1},       {"I16", 2, -1},
    {"U16", 2, -1},      {"F16", 2, -1},      {"U32", 4, -1},        {"I64", 8, -1},
    {"U64", 8, -1},      {"F8_E4M3", 1, -1},  {"F8_E5M2", 1, -1},    {"F8_E8M0", 1, -1},
};
enum { ST_F32 = 0, ST_F64 = 1, ST_I8 = 2, ST_I32 = 3, ST_U8 = 4, ST_BF16 = 5 };
#define ST_NDTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

/* Valid in the format, but not a whole number of bytes per element. */
static const char *const st_subbyte_dtypes[] = {"F4", "F6_E2M3", "F6_E3M2"};

/* Re-records the detail of a failed shape check with the tensor's name. */
static lb_status name_shape_error(lb_ctx *ctx, lb_status status, const char *name)
{
    char detail[512];
    snprintf(detail, sizeof detail, "%s", lb_ctx_error(ctx));
    return lb_error(ctx, status, "safetensors writer: tensor '%s': %s", name ? name : "(null)",
                    detail);
}

/* The safetensors dtype written for a lowbit dtype (BF16 only through
 * lb_safetensors_writer_add_bf16). */
static int st_dtype_of_lb(lb_dtype dtype)
{
    switch (dtype) {
    case LB_F32: return ST_F32;
    case LB_F64: return ST_F64;
    case LB_S8: return ST_I8;
    case LB_S32: return ST_I32;
    case LB_U8: return ST_U8;
    }
    return -1;
}

uint16_t lb_f32_to_bf16(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x0040u); /* quiet NaN */
    /* Adding 0x7fff plus the lowest kept bit carries into the kept half
     * exactly when the dropped half is above one half, or equal to it with
     * an odd kept half: round to nearest, ties to even. Overflow carries
     * into the exponent and gives Inf, as it should. */
    b += 0x7fffu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

float lb_bf16_to_f32(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* "(2, 3)" for messages; "(...)" when it does not fit. */
static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    if (k < cap) k += (size_t)snprintf(buf + k, cap - k, ndim == 1 ? ",)" : ")");
    if (k >= cap && cap >= 6) snprintf(buf, cap, "(...)");
}

/* ================================================================= reading */

typedef struct st_entry {
    char *name;
    unsigned dtype;              /* index into st_dtypes */
    int ndim;                    /* may exceed LB_MAX_DIMS */
    int64_t shape[LB_MAX_DIMS];  /* first min(ndim, LB_MAX_DIMS) dims, the rest 1 */
    size_t numel;
    uint64_t begin, end;         /* data_offsets, relative to the data section */
} st_entry;

typedef struct st_meta {
    char *key;
    char *value;
} st_meta;

struct lb_safetensors {
    char *path;
    int fd;
    uint64_t data_start;         /* 8 + header length */
    uint64_t data_size;
    size_t count;
    st_entry *entries;           /* file order */
    const st_entry **by_name;    /* sorted by name, for lookup */
    size_t nmeta;
    st_meta *meta;               /* file order */
};

void lb_safetensors_free(lb_safetensors *st)
{
    if (!st) return;
    if (st->fd >= 0) close(st->fd);
    for (size_t i = 0; i < st->count; i++) free(st->entries[i].name);
    for (size_t i = 0; i < st->nmeta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->entries);
    free(st->by_name);
    free(st->meta);
    free(st->path);
    free(st);
}

/* Byte checks cJSON does not make: control characters (JSON allows only
 * tab, newline and carriage return, and only between tokens) and \u0000
 * escapes, which would silently cut a name short in C. Returns the offset
 * of the first offending byte, or n. */
static size_t find_forbidden_byte(const char *s, size_t n, const char **why)
{
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            *why = "a control character";
            return i;
        }
        if (!in_string) {
            if (c == '"') in_string = true;
            continue;
        }
        if (c == '"') {
            in_string = false;
        } else if (c == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) {
                *why = "a \\u0000 escape (NUL character)";
                return i;
            }
            i++; /* skip the escaped character */
        }
    }
    return n;
}

/* A JSON number that is an integer in [0, 2^53]. */
static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_JSON_INT || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

static lb_status parse_entry(lb_ctx *ctx, const lb_safetensors *st, const cJSON *item,
                             st_entry *e)
{
    const char *path = st->path, *name = item->string;
    if (!cJSON_IsObject(item))
        return lb_error(ctx, LB_ERR_FORMAT, "%s: tensor '%s': entry is %s, not an object", path,
                        name, json_type_name(item));
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL, *f;
    cJSON_ArrayForEach(f, item)
    {
        const cJSON **slot = strcmp(f->string, "dtype") == 0          ? &dtype
                             : strcmp(f->string, "shape") == 0        ? &shape
                             : strcmp(f->string, "data_offsets") == 0 ? &offsets
                                                                      : NULL;
        if (!slot)
            return lb_error(ctx, LB_ERR_FORMAT,
                            "%s: tensor '%s': unexpected key '%s' (allowed: dtype, shape, "
                            "data_offsets)",
                            path, name, f->string);
        if (*slot)
            return lb_error(ctx, LB_ERR_FORMAT, "%s: tensor '%s': duplicate key '%s'", path, name,
                            f->string);
        *slot = f;
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offsets ? "data_offsets" : NULL;
    if (missing)
        return lb_error(ctx, LB_ERR_FORMAT, "%s: tensor '%s': missing key '%s'", path, name,
                        missing);

    /* dtype */
    if (!cJSON_IsString(dtype))
        return lb_error(ctx, LB_ERR_FORMAT, "%s: tensor '%s': dtype is %s, not a string", path,
                        name, json_type_name(dtype));
    const char *dname = dtype->valuestring;
    e->dtype = (unsigned)ST_NDTYPES;
    for (unsigned k = 0; k < ST_NDTYPES; k++)
        if (strcmp(dname, st_dtypes[k].name) == 0) e->dtype = k;
    if (e->dtype == ST_NDTYPES) {
        for (size_t k = 0; k < sizeof st_subbyte_dtypes / sizeof st_subbyte_dtypes[0]; k++)
            if (strcmp(dname, st_subbyte_dtypes[k]) == 0)
                return lb_error(ctx, LB_ERR_UNSUPPORTED,
                                "%s: tensor '%s': sub-byte dtype %s is not supported", path, name,
                                dname);
        return lb_error(ctx, LB_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.40s'", path, name,
                        dname);
    }

    /* shape */
    if (!cJSON_IsArray(shape))
        return lb_error(ctx, LB_ERR_FORMAT, "%s: tensor '%s': shape is %s, not an array", path,
                        name, json_type_name(shape));
    int ndim = cJSON_GetArraySize(shape);
    e->ndim = ndim;
    for (int i = 0; i < LB_MAX_DIMS; i++) e->shape[i] = 1;
    size_t numel = 1;
    bool overflow = false;
    int i = 0;
    cJSON_ArrayForEach(f, shape)
    {
        uint64_t d;
        if (!json_uint(f, &d)) {
            if (cJSON_IsNumber(f) && f->valuedouble < 0)
                return lb_error(ctx, LB_ERR_FORMAT, "%s: tensor '%s': shape[%d] is negative (%g)",
                                path, name, i, f->valuedouble);
            return lb_error(ctx, LB_ERR_FORMAT,
                            "%s: tensor '%s': shape[%d] is not an integer in [0, 2^53]", path,
                            name, i);
        }
        if (i < LB_MAX_DIMS) e->shape[i] = (int64_t)d;
        if ((uint64_t)d > SIZE_MAX || !lb_mul_size(numel, (size_t)d, &numel)) overflow = true;
        i++;
    }
    char shape_text[96];
    format_shape(shape_text, sizeof shape_text, ndim < LB_MAX_DIMS ? ndim : LB_MAX_DIMS, e->shape);
    if (ndim > LB_MAX_DIMS) snprintf(shape_text, sizeof shape_text, "of %d dimensions", ndim);
    size_t nbytes = 0;
    if (overflow || !lb_mul_size(numel, st_dtypes[e->dtype].size, &nbytes))
        return lb_error(ctx, LB_ERR_FORMAT, "%s: tensor '%s': shape %s of %s: size overflows",
                        path, name, shape_text, dname);
    e->numel = numel;

    /* data_offsets */
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return lb_error(ctx, LB_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets must be an array [begin, end]", path, name);
    if (!json_uint(offsets->child, &e->begin) || !json_uint(offsets->child->next, &e->end))
        return lb_error(ctx, LB_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets must hold integers in [0, 2^53]", path,
                        name);
    if (e->end < e->begin)
        return lb_error(ctx, LB_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                        path, name, e->begin, e->end);
    if (e->end > st->data_size)
        return lb_error(ctx, LB_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                        "] run past the end of the %" PRIu64 "-byte data section",
                        path, name, e->begin, e->end, st->data_size);
    if (e->end - e->begin != (uint64_t)nbytes)
        return lb_error(ctx, LB_ERR_FORMAT,
                        "%s: tensor '%s': shape %s of %s needs %zu bytes but data_offsets [%" PRIu64
                        ", %" PRIu64 "] hold %" PRIu64,
                        path, name, shape_text, dname, nbytes, e->begin, e->end,
                        e->end - e->begin);
    e->name = strdup(name);
    if (!e->name) return lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory", path);
    return LB_OK;
}

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp((*(const st_entry *const *)a)->name, (*(const st_entry *const *)b)->name);
}

static int cmp_entry_offsets(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp((*(const st_meta *const *)a)->key, (*(const st_meta *const *)b)->key);
}

/* Duplicate names, and byte ranges that tile [0, data_size). */
static lb_status check_layout(lb_ctx *ctx, lb_safetensors *st)
{
    const char *path = st->path;
    st->by_name = malloc((st->count ? st->count : 1) * sizeof *st->by_name);
    const st_entry **by_offset = malloc((st->count ? st->count : 1) * sizeof *by_offset);
    const st_meta **meta = malloc((st->nmeta ? st->nmeta : 1) * sizeof *meta);
    lb_status status = LB_OK;
    if (!st->by_name || !by_offset || !meta) {
        status = lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < st->count; i++) st->by_name[i] = by_offset[i] = &st->entries[i];
    qsort(st->by_name, st->count, sizeof *st->by_name, cmp_entry_name);
    for (size_t i = 1; i < st->count; i++) {
        if (strcmp(st->by_name[i - 1]->name, st->by_name[i]->name) == 0) {
            status = lb_error(ctx, LB_ERR_FORMAT, "%s: duplicate tensor name '%s'", path,
                              st->by_name[i]->name);
            goto done;
        }
    }
    for (size_t i = 0; i < st->nmeta; i++) meta[i] = &st->meta[i];
    qsort(meta, st->nmeta, sizeof *meta, cmp_meta_key);
    for (size_t i = 1; i < st->nmeta; i++) {
        if (strcmp(meta[i - 1]->key, meta[i]->key) == 0) {
            status = lb_error(ctx, LB_ERR_FORMAT, "%s: duplicate metadata key '%s'", path,
                              meta[i]->key);
            goto done;
        }
    }
    qsort(by_offset, st->count, sizeof *by_offset, cmp_entry_offsets);
    uint64_t covered = 0;
    const st_entry *prev = NULL;
    for (size_t i = 0; i < st->count; i++) {
        const st_entry *e = by_offset[i];
        if (e->begin < covered) {
            status = lb_error(ctx, LB_ERR_FORMAT,
                              "%s: tensor '%s' (data_offsets [%" PRIu64 ", %" PRIu64
                              "]) overlaps tensor '%s' (data_offsets [%" PRIu64 ", %" PRIu64 "])",
                              path, e->name, e->begin, e->end, prev->name, prev->begin, prev->end);
            goto done;
        }
        if (e->begin > covered) {
            status = lb_error(ctx, LB_ERR_FORMAT,
                              "%s: gap in the data section: bytes [%" PRIu64 ", %" PRIu64
                              ") before tensor '%s' belong to no tensor",
                              path, covered, e->begin, e->name);
            goto done;
        }
        if (e->end > covered || !prev) prev = e;
        covered = e->end;
    }
    if (covered != st->data_size)
        status = lb_error(ctx, LB_ERR_FORMAT,
                          "%s: the data section has %" PRIu64 " bytes but the tensors cover only %" PRIu64
                          " (%" PRIu64 " trailing bytes)",
                          path, st->data_size, covered, st->data_size - covered);
done:
    free(by_offset);
    free(meta);
    return status;
}

static lb_status parse_metadata(lb_ctx *ctx, lb_safetensors *st, const cJSON *item)
{
    if (!cJSON_IsObject(item))
        return lb_error(ctx, LB_ERR_FORMAT, "%s: \"__metadata__\" is %s, not an object", st->path,
                        json_type_name(item));
    const cJSON *m;
    size_t n = 0;
    cJSON_ArrayForEach(m, item) n++;
    st->meta = calloc(n ? n : 1, sizeof *st->meta);
    if (!st->meta) return lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory", st->path);
    cJSON_ArrayForEach(m, item)
    {
        if (!cJSON_IsString(m))
            return lb_error(ctx, LB_ERR_FORMAT,
                            "%s: metadata value of key '%s' is %s; safetensors metadata values "
                            "must be strings",
                            st->path, m->string, json_type_name(m));
        st_meta *dst = &st->meta[st->nmeta];
        dst->key = strdup(m->string);
        dst->value = strdup(m->valuestring);
        st->nmeta++;
        if (!dst->key || !dst->value) return lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory", st->path);
    }
    return LB_OK;
}

/* Validates the JSON header text and fills st's entries and metadata. */
static lb_status parse_header(lb_ctx *ctx, lb_safetensors *st, const char *text, size_t n)
{
    const char *path = st->path, *why = NULL;
    if (!lb_io_utf8_valid(text, n))
        return lb_error(ctx, LB_ERR_FORMAT, "%s: the JSON header is not valid UTF-8", path);
    size_t bad = find_forbidden_byte(text, n, &why);
    if (bad < n)
        return lb_error(ctx, LB_ERR_FORMAT, "%s: the JSON header holds %s at byte %zu", path, why,
                        bad);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
        return lb_error(ctx, LB_ERR_FORMAT, "%s: the header is not valid JSON (error at byte %zu of %zu)",
                        path, at, n);
    }
    lb_status status = LB_OK;
    for (size_t i = (size_t)(end - text); i < n; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            status = lb_error(ctx, LB_ERR_FORMAT,
                              "%s: unexpected bytes after the JSON object at header byte %zu "
                              "(only whitespace padding may follow)",
                              path, i);
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        status = lb_error(ctx, LB_ERR_FORMAT, "%s: the JSON header is %s, not an object", path,
                          json_type_name(root));
        goto done;
    }
    size_t ntensors = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) if (strcmp(item->string, "__metadata__") != 0) ntensors++;
    st->entries = calloc(ntensors ? ntensors : 1, sizeof *st->entries);
    if (!st->entries) {
        status = lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory for %zu tensor entries", path,
                          ntensors);
        goto done;
    }
    bool seen_metadata = false;
    cJSON_ArrayForEach(item, root)
    {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (seen_metadata) {
                status = lb_error(ctx, LB_ERR_FORMAT, "%s: duplicate \"__metadata__\" entry", path);
                goto done;
            }
            seen_metadata = true;
            status = parse_metadata(ctx, st, item);
        } else {
            status = parse_entry(ctx, st, item, &st->entries[st->count]);
            if (status == LB_OK) st->count++;
        }
        if (status != LB_OK) goto done;
    }
    status = check_layout(ctx, st);
done:
    cJSON_Delete(root);
    return status;
}

lb_status lb_safetensors_read(lb_ctx *ctx, const char *path, lb_safetensors **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "lb_safetensors_read: NULL output pointer");
    *out = NULL;
    if (!path) return lb_error(ctx, LB_ERR_ARG, "lb_safetensors_read: NULL path");
    lb_safetensors *st = calloc(1, sizeof *st);
    if (!st) return lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory", path);
    st->fd = -1;
    char *header = NULL;
    lb_status status;
    st->path = strdup(path);
    if (!st->path) {
        status = lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    uint64_t size;
    status = lb_io_open_read(ctx, path, &st->fd, &size);
    if (status != LB_OK) goto fail;
    if (size < 8) {
        status = lb_error(ctx, LB_ERR_FORMAT,
                          "%s: not a safetensors file: %" PRIu64 " bytes, too short for the 8-byte header length",
                          path, size);
        goto fail;
    }
    unsigned char len_bytes[8];
    status = lb_io_pread_full(ctx, path, st->fd, len_bytes, 8, 0);
    if (status != LB_OK) goto fail;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | len_bytes[i];
    if (header_len > LB_SAFETENSORS_MAX_HEADER) {
        status = lb_error(ctx, LB_ERR_FORMAT,
                          "%s: header length %" PRIu64 " exceeds the limit of %u bytes (not a "
                          "safetensors file?)",
                          path, header_len, LB_SAFETENSORS_MAX_HEADER);
        goto fail;
    }
    if (header_len > size - 8) {
        status = lb_error(ctx, LB_ERR_FORMAT,
                          "%s: truncated: header length %" PRIu64 " but only %" PRIu64
                          " bytes follow the length field",
                          path, header_len, size - 8);
        goto fail;
    }
    if (header_len == 0) {
        status = lb_error(ctx, LB_ERR_FORMAT, "%s: empty JSON header", path);
        goto fail;
    }
    st->data_start = 8 + header_len;
    st->data_size = size - st->data_start;
    header = malloc((size_t)header_len);
    if (!header) {
        status = lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte header",
                          path, header_len);
        goto fail;
    }
    status = lb_io_pread_full(ctx, path, st->fd, header, (size_t)header_len, 8);
    if (status != LB_OK) goto fail;
    status = parse_header(ctx, st, header, (size_t)header_len);
    if (status != LB_OK) goto fail;
    free(header);
    *out = st;
    return LB_OK;
fail:
    free(header);
    lb_safetensors_free(st);
    return status;
}

size_t lb_safetensors_count(const lb_safetensors *st) { return st ? st->count : 0; }

const char *lb_safetensors_name(const lb_safetensors *st, size_t i)
{
    return st && i < st->count ? st->entries[i].name : NULL;
}

const char *lb_safetensors_metadata(const lb_safetensors *st, const char *key)
{
    if (!st || !key) return NULL;
    for (size_t i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

size_t lb_safetensors_metadata_count(const lb_safetensors *st) { return st ? st->nmeta : 0; }

const char *lb_safetensors_metadata_key(const lb_safetensors *st, size_t i)
{
    return st && i < st->nmeta ? st->meta[i].key : NULL;
}

static int cmp_name_key(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(const st_entry *const *)elem)->name);
}

static lb_status find_entry(lb_ctx *ctx, const lb_safetensors *st, const char *name,
                            const st_entry **out)
{
    if (!st || !name) return lb_error(ctx, LB_ERR_ARG, "NULL safetensors file or tensor name");
    const st_entry *const *hit = bsearch(name, st->by_name, st->count, sizeof *st->by_name, cmp_name_key);
    if (!hit) return lb_error(ctx, LB_ERR_NOT_FOUND, "%s: no tensor named '%s'", st->path, name);
    *out = *hit;
    return LB_OK;
}

lb_status lb_safetensors_info(lb_ctx *ctx, const lb_safetensors *st, const char *name,
                              const char **dtype, int *ndim, int64_t shape[LB_MAX_DIMS])
{
    const st_entry *e;
    lb_status status = find_entry(ctx, st, name, &e);
    if (status != LB_OK) return status;
    if (dtype) *dtype = st_dtypes[e->dtype].name;
    if (ndim) *ndim = e->ndim;
    if (e->ndim > LB_MAX_DIMS)
        return lb_error(ctx, LB_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions; at most %d are supported",
                        st->path, name, e->ndim, LB_MAX_DIMS);
    if (shape)
        for (int i = 0; i < LB_MAX_DIMS; i++) shape[i] = e->shape[i];
    return LB_OK;
}

/* Checks that lowbit can convert entry e; *lb gets the lowbit dtype. */
static lb_status check_convertible(lb_ctx *ctx, const lb_safetensors *st, const st_entry *e,
                                   lb_dtype *lb)
{
    if (st_dtypes[e->dtype].lb < 0)
        return lb_error(ctx, LB_ERR_UNSUPPORTED,
                        "%s: tensor '%s' has dtype %s; lowbit reads F32, F64, I8, I32, U8 and BF16",
                        st->path, e->name, st_dtypes[e->dtype].name);
    if (e->ndim > LB_MAX_DIMS)
        return lb_error(ctx, LB_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions; at most %d are supported",
                        st->path, e->name, e->ndim, LB_MAX_DIMS);
    *lb = (lb_dtype)st_dtypes[e->dtype].lb;
    return LB_OK;
}

/* Reads e's data into dst (numel elements of its lowbit dtype). */
static lb_status read_entry(lb_ctx *ctx, const lb_safetensors *st, const st_entry *e, void *dst)
{
    uint64_t offset = st->data_start + e->begin;
    if (e->dtype != ST_BF16)
        return lb_io_pread_full(ctx, st->path, st->fd, dst, (size_t)(e->end - e->begin), offset);
    /* BF16: read in chunks, widen each element to the high half of a float. */
    enum { CHUNK = 4096 };
    unsigned char buf[2 * CHUNK];
    float *out = dst; // (numel,)
    for (size_t done = 0; done < e->numel;) {
        size_t m = e->numel - done < CHUNK ? e->numel - done : CHUNK;
        lb_status status = lb_io_pread_full(ctx, st->path, st->fd, buf, 2 * m, offset + 2 * done);
        if (status != LB_OK) return status;
        for (size_t j = 0; j < m; j++)
            out[done + j] = lb_bf16_to_f32((uint16_t)(buf[2 * j] | buf[2 * j + 1] << 8));
        done += m;
    }
    return LB_OK;
}

lb_status lb_safetensors_get(lb_ctx *ctx, const lb_safetensors *st, const char *name,
                             lb_tensor **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "lb_safetensors_get: NULL output pointer");
    *out = NULL;
    const st_entry *e;
    lb_status status = find_entry(ctx, st, name, &e);
    if (status != LB_OK) return status;
    lb_dtype dtype;
    status = check_convertible(ctx, st, e, &dtype);
    if (status != LB_OK) return status;
    lb_tensor *t;
    status = lb_tensor_create(ctx, dtype, e->ndim, e->shape, &t);
    if (status != LB_OK) return status;
    status = read_entry(ctx, st, e, t->data);
    if (status != LB_OK) {
        lb_tensor_free(t);
        return status;
    }
    *out = t;
    return LB_OK;
}

lb_status lb_safetensors_get_into(lb_ctx *ctx, const lb_safetensors *st, const char *name,
                                  lb_dtype dtype, int ndim, const int64_t *shape, void *dst)
{
    const st_entry *e;
    lb_status status = find_entry(ctx, st, name, &e);
    if (status != LB_OK) return status;
    if (lb_dtype_size(dtype) == 0)
        return lb_error(ctx, LB_ERR_ARG, "%s: tensor '%s': unknown expected dtype %d", st->path,
                        name, (int)dtype);
    if (ndim < 0 || ndim > LB_MAX_DIMS || (ndim > 0 && !shape))
        return lb_error(ctx, LB_ERR_ARG, "%s: tensor '%s': bad expected rank %d or NULL shape",
                        st->path, name, ndim);
    lb_dtype have;
    status = check_convertible(ctx, st, e, &have);
    if (status != LB_OK) return status;
    bool same = have == dtype && ndim == e->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == e->shape[i];
    if (!same) {
        char got_text[96], want_text[96];
        format_shape(got_text, sizeof got_text, e->ndim, e->shape);
        format_shape(want_text, sizeof want_text, ndim, shape);
        return lb_error(ctx, LB_ERR_ARG, "%s: tensor '%s' is %s %s in the file, expected %s %s",
                        st->path, name, st_dtypes[e->dtype].name, got_text, lb_dtype_name(dtype),
                        want_text);
    }
    if (e->numel && !dst)
        return lb_error(ctx, LB_ERR_ARG, "%s: tensor '%s': NULL destination", st->path, name);
    return e->numel ? read_entry(ctx, st, e, dst) : LB_OK;
}

/* ================================================================= writing */

typedef struct w_entry {
    char *name;
    unsigned dtype;             /* index into st_dtypes */
    int ndim;
    int64_t shape[LB_MAX_DIMS];
    size_t nbytes;
    void *data;                 /* the file's bytes, lb_alloc'd */
} w_entry;

struct lb_safetensors_writer {
    w_entry *entries;
    size_t count, cap;
    st_meta *meta;
    size_t nmeta, meta_cap;
};

lb_status lb_safetensors_writer_create(lb_ctx *ctx, lb_safetensors_writer **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "lb_safetensors_writer_create: NULL output pointer");
    *out = calloc(1, sizeof **out);
    return *out ? LB_OK : lb_error(ctx, LB_ERR_NOMEM, "out of memory for a safetensors writer");
}

void lb_safetensors_writer_free(lb_safetensors_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->count; i++) {
        free(w->entries[i].name);
        lb_free(w->entries[i].data);
    }
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->entries);
    free(w->meta);
    free(w);
}

/* Validates name and shape and appends an entry whose data buffer
 * (nbytes) the caller fills; nothing changes on failure. */
static lb_status writer_append(lb_ctx *ctx, lb_safetensors_writer *w, const char *name,
                               unsigned dtype, int ndim, const int64_t *shape, w_entry **out)
{
    if (!w || !name) return lb_error(ctx, LB_ERR_ARG, "safetensors writer: NULL writer or name");
    if (!*name) return lb_error(ctx, LB_ERR_ARG, "safetensors writer: empty tensor name");
    if (strcmp(name, "__metadata__") == 0)
        return lb_error(ctx, LB_ERR_ARG, "safetensors writer: '__metadata__' is reserved");
    if (!lb_io_utf8_valid(name, strlen(name)))
        return lb_error(ctx, LB_ERR_ARG, "safetensors writer: tensor name is not valid UTF-8");
    for (size_t i = 0; i < w->count; i++)
        if (strcmp(w->entries[i].name, name) == 0)
            return lb_error(ctx, LB_ERR_ARG, "safetensors writer: duplicate tensor name '%s'", name);
    size_t numel, nbytes;
    /* The element count is that of the element type; the byte count uses
     * the file's element size (2 for BF16 from floats). */
    lb_status status = lb_shape_bytes(ctx, LB_U8, ndim, shape, &numel, NULL);
    if (status != LB_OK) return status;
    if (!lb_mul_size(numel, st_dtypes[dtype].size, &nbytes))
        return lb_error(ctx, LB_ERR_NOMEM, "safetensors writer: tensor '%s' byte count overflows",
                        name);
    if (w->count == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        w_entry *grown = realloc(w->entries, cap * sizeof *grown);
        if (!grown) return lb_error(ctx, LB_ERR_NOMEM, "safetensors writer: out of memory");
        w->entries = grown;
        w->cap = cap;
    }
    w_entry *e = &w->entries[w->count];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    e->data = lb_alloc(nbytes ? nbytes : 1);
    if (!e->name || !e->data) {
        free(e->name);
        lb_free(e->data);
        return lb_error(ctx, LB_ERR_NOMEM, "safetensors writer: out of memory for tensor '%s' (%zu bytes)",
                        name, nbytes);
    }
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < LB_MAX_DIMS; i++) e->shape[i] = i < ndim ? shape[i] : 1;
    e->nbytes = nbytes;
    w->count++;
    *out = e;
    return LB_OK;
}

lb_status lb_safetensors_writer_add_raw(lb_ctx *ctx, lb_safetensors_writer *w, const char *name,
                                        lb_dtype dtype, int ndim, const int64_t *shape,
                                        const void *data)
{
    int sd = st_dtype_of_lb(dtype);
    if (sd < 0) return lb_error(ctx, LB_ERR_ARG, "safetensors writer: unknown dtype %d", (int)dtype);
    size_t nbytes;
    lb_status status = lb_shape_bytes(ctx, dtype, ndim, shape, NULL, &nbytes);
    if (status != LB_OK) return name_shape_error(ctx, status, name);
    if (nbytes && !data)
        return lb_error(ctx, LB_ERR_ARG, "safetensors writer: NULL data for tensor '%s'",
                        name ? name : "(null)");
    w_entry *e;
    status = writer_append(ctx, w, name, (unsigned)sd, ndim, shape, &e);
    if (status != LB_OK) return status;
    if (nbytes) memcpy(e->data, data, nbytes);
    return LB_OK;
}

lb_status lb_safetensors_writer_add(lb_ctx *ctx, lb_safetensors_writer *w, const char *name,
                                    const lb_tensor *t)
{
    if (!t) return lb_error(ctx, LB_ERR_ARG, "safetensors writer: NULL tensor");
    size_t nbytes;
    lb_status status = lb_shape_bytes(ctx, t->dtype, t->ndim, t->shape, NULL, &nbytes);
    if (status != LB_OK) return status;
    if (nbytes != t->nbytes)
        return lb_error(ctx, LB_ERR_ARG,
                        "safetensors writer: tensor '%s': nbytes %zu does not match its shape (%zu)",
                        name ? name : "(null)", t->nbytes, nbytes);
    return lb_safetensors_writer_add_raw(ctx, w, name, t->dtype, t->ndim, t->shape, t->data);
}

lb_status lb_safetensors_writer_add_bf16(lb_ctx *ctx, lb_safetensors_writer *w, const char *name,
                                         int ndim, const int64_t *shape, const float *data)
{
    size_t numel;
    lb_status status = lb_shape_bytes(ctx, LB_F32, ndim, shape, &numel, NULL);
    if (status != LB_OK) return name_shape_error(ctx, status, name);
    if (numel && !data)
        return lb_error(ctx, LB_ERR_ARG, "safetensors writer: NULL data for tensor '%s'",
                        name ? name : "(null)");
    w_entry *e;
    status = writer_append(ctx, w, name, ST_BF16, ndim, shape, &e);
    if (status != LB_OK) return status;
    unsigned char *bytes = e->data;
    for (size_t i = 0; i < numel; i++) {
        uint16_t b = lb_f32_to_bf16(data[i]);
        bytes[2 * i] = (unsigned char)(b & 0xff);
        bytes[2 * i + 1] = (unsigned char)(b >> 8);
    }
    return LB_OK;
}

lb_status lb_safetensors_writer_set_metadata(lb_ctx *ctx, lb_safetensors_writer *w,
                                             const char *key, const char *value)
{
    if (!w || !key || !value)
        return lb_error(ctx, LB_ERR_ARG, "safetensors writer: NULL writer, metadata key or value");
    if (!lb_io_utf8_valid(key, strlen(key)) || !lb_io_utf8_valid(value, strlen(value)))
        return lb_error(ctx, LB_ERR_ARG, "safetensors writer: metadata key or value of '%s' is not valid UTF-8",
                        lb_io_utf8_valid(key, strlen(key)) ? key : "?");
    char *v = strdup(value);
    if (!v) return lb_error(ctx, LB_ERR_NOMEM, "safetensors writer: out of memory");
    for (size_t i = 0; i < w->nmeta; i++) {
        if (strcmp(w->meta[i].key, key) == 0) {
            free(w->meta[i].value);
            w->meta[i].value = v;
            return LB_OK;
        }
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return lb_error(ctx, LB_ERR_NOMEM, "safetensors writer: out of memory");
    }
    if (w->nmeta == w->meta_cap) {
        size_t cap = w->meta_cap ? 2 * w->meta_cap : 8;
        st_meta *grown = realloc(w->meta, cap * sizeof *grown);
        if (!grown) {
            free(k);
            free(v);
            return lb_error(ctx, LB_ERR_NOMEM, "safetensors writer: out of memory");
        }
        w->meta = grown;
        w->meta_cap = cap;
    }
    w->meta[w->nmeta].key = k;
    w->meta[w->nmeta].value = v;
    w->nmeta++;
    return LB_OK;
}

/* A growable text buffer; `failed` sticks after an allocation failure. */
typedef struct text {
    char *s;
    size_t len, cap;
    bool failed;
} text;

static void text_put(text *t, const char *s, size_t n)
{
    if (t->failed) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                t->failed = true;
                return;
            }
            cap *= 2;
        }
        char *grown = realloc(t->s, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_str(text *t, const char *s) { text_put(t, s, strlen(s)); }

static void text_u64(text *t, uint64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRIu64, v);
    text_put(t, buf, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control characters
 * escaped; UTF-8 passes through (it was validated at add time). */
static void text_json_string(text *t, const char *s)
{
    text_put(t, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            text_put(t, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            text_put(t, esc, 6);
        } else {
            text_put(t, (const char *)p, 1);
        }
    }
    text_put(t, "\"", 1);
}

lb_status lb_safetensors_writer_save(lb_ctx *ctx, lb_safetensors_writer *w, const char *path)
{
    if (!w || !path) return lb_error(ctx, LB_ERR_ARG, "safetensors writer: NULL writer or path");
    text h = {0};
    text_put(&h, "{", 1);
    bool first = true;
    if (w->nmeta) {
        text_str(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nmeta; i++) {
            if (i) text_put(&h, ",", 1);
            text_json_string(&h, w->meta[i].key);
            text_put(&h, ":", 1);
            text_json_string(&h, w->meta[i].value);
        }
        text_put(&h, "}", 1);
        first = false;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->count; i++) {
        const w_entry *e = &w->entries[i];
        if (!first) text_put(&h, ",", 1);
        first = false;
        text_json_string(&h, e->name);
        text_str(&h, ":{\"dtype\":");
        text_json_string(&h, st_dtypes[e->dtype].name);
        text_str(&h, ",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) text_put(&h, ",", 1);
            text_u64(&h, (uint64_t)e->shape[d]);
        }
        text_str(&h, "],\"data_offsets\":[");
        text_u64(&h, offset);
        text_put(&h, ",", 1);
        offset += e->nbytes; /* cannot wrap: every nbytes is an allocated size */
        text_u64(&h, offset);
        text_str(&h, "]}");
    }
    text_put(&h, "}", 1);
    while (!h.failed && h.len % 8 != 0) text_put(&h, " ", 1);
    if (h.failed) {
        free(h.s);
        return lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory for the safetensors header", path);
    }
    if (h.len > LB_SAFETENSORS_MAX_HEADER || offset > ST_MAX_JSON_INT) {
        free(h.s);
        return lb_error(ctx, LB_ERR_UNSUPPORTED,
                        "%s: a %zu-byte header or %" PRIu64 " data bytes exceed what readers accept",
                        path, h.len, offset);
    }
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)((uint64_t)h.len >> (8 * i));

    lb_io_atomic a;
    lb_status status = lb_io_atomic_begin(ctx, path, &a);
    if (status == LB_OK) status = lb_io_atomic_write(ctx, &a, len_bytes, 8);
    if (status == LB_OK) status = lb_io_atomic_write(ctx, &a, h.s, h.len);
    for (size_t i = 0; status == LB_OK && i < w->count; i++)
        status = lb_io_atomic_write(ctx, &a, w->entries[i].data, w->entries[i].nbytes);
    free(h.s);
    if (status != LB_OK) {
        lb_io_atomic_abort(&a);
        return status;
    }
    return lb_io_atomic_commit(ctx, &a);
}
