/* tests/test_safetensors.c — safetensors reading and writing: a file written
 * by Python (tests/gen/io_fixtures.py), byte-identical writer output, round
 * trips of every dtype and rank with metadata, bfloat16 rounding, every
 * malformed header we could think of, every truncation of valid files,
 * get_into mismatches, writer argument errors and atomic saves. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lowbit/lowbit.h"
#include "lowbit/safetensors.h"
#include "test_util.h"

/* ------------------------------------------------------------------ helpers */

/* The fixture formulas of tests/gen/io_fixtures.py, i = flat index. */
static double expected_value(lb_dtype dtype, size_t i)
{
    switch (dtype) {
    case LB_F32:
    case LB_F64: return (double)i * 0.25 - 3.0;
    case LB_S8: return (double)((int)((i * 37) % 256) - 128);
    case LB_S32: return (double)((int64_t)i * 100003 - 5000000);
    case LB_U8: return (double)((i * 37) % 256);
    }
    return NAN;
}

static double element(const lb_tensor *t, size_t i)
{
    switch (t->dtype) {
    case LB_F32: return lb_tensor_f32(t)[i];
    case LB_F64: return lb_tensor_f64(t)[i];
    case LB_S8: return lb_tensor_s8(t)[i];
    case LB_S32: return lb_tensor_s32(t)[i];
    case LB_U8: return lb_tensor_u8(t)[i];
    }
    return NAN;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void check_error(lb_ctx *ctx, lb_status got, lb_status want, const char *path,
                        const char *needle, const char *what)
{
    const char *msg = lb_ctx_error(ctx);
    if (got != want || (path && !strstr(msg, path)) || (needle && !strstr(msg, needle))) {
        print_error("case '%s': got status %d (%s) want %d (needle '%s'), detail: %s\n", what,
                    (int)got, lb_status_str(got), (int)want, needle ? needle : "", msg);
        fail();
    }
}

static int count_temp_files(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

/* A safetensors file from header text (length prefix computed unless
 * len_override is set) and ndata data bytes (0xa5). */
static void write_st(const char *path, const char *json, size_t json_len, uint64_t len_field,
                     size_t ndata)
{
    size_t total = 8 + json_len + ndata;
    unsigned char *buf = malloc(total);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len_field >> (8 * i));
    memcpy(buf + 8, json, json_len);
    memset(buf + 8 + json_len, 0xa5, ndata);
    assert_int_equal(lb_test_write_file(path, buf, total), 0);
    free(buf);
}

static lb_ctx *new_ctx(void)
{
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    return ctx;
}

static const lb_dtype all_dtypes[] = {LB_F32, LB_F64, LB_S8, LB_S32, LB_U8};
static const char *const st_names[] = {"F32", "F64", "I8", "I32", "U8"};
static const int64_t fixture_shapes[5][4] = {{1}, {5}, {2, 3}, {2, 3, 4}, {2, 1, 3, 2}};

/* -------------------------------------------------------------------- tests */

/* The file written by Python: names in header order (the reverse of the
 * data order), metadata, every dtype x rank, BF16, zero-size and I64. */
static void test_python_fixture(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    char path[512];
    lb_test_path(path, sizeof path, lb_test_data_dir(), "io/python.safetensors");
    lb_safetensors *st = NULL;
    lb_status s = lb_safetensors_read(ctx, path, &st);
    if (s != LB_OK) print_error("%s\n", lb_ctx_error(ctx));
    assert_int_equal(s, LB_OK);
    assert_int_equal(lb_safetensors_count(st), 29);
    assert_string_equal(lb_safetensors_name(st, 0), "i64");
    assert_string_equal(lb_safetensors_name(st, 1), "empty");
    assert_string_equal(lb_safetensors_name(st, 28), "f32_r0");
    assert_null(lb_safetensors_name(st, 29));
    assert_string_equal(lb_safetensors_metadata(st, "format"), "pt");
    assert_string_equal(lb_safetensors_metadata(st, "lowbit"), "fixture");
    assert_string_equal(lb_safetensors_metadata(st, "unicode"), "\xc3\xa9\xe4\xb8\xad");
    assert_null(lb_safetensors_metadata(st, "absent"));
    assert_int_equal(lb_safetensors_metadata_count(st), 3);
    assert_string_equal(lb_safetensors_metadata_key(st, 0), "format");
    assert_null(lb_safetensors_metadata_key(st, 3));

    for (int k = 0; k < 5; k++) {
        for (int rank = 0; rank <= 4; rank++) {
            char name[32];
            snprintf(name, sizeof name, "%s_r%d", st_names[k], rank);
            for (char *c = name; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
            const char *dtype;
            int ndim;
            int64_t shape[LB_MAX_DIMS];
            assert_int_equal(lb_safetensors_info(ctx, st, name, &dtype, &ndim, shape), LB_OK);
            assert_string_equal(dtype, st_names[k]);
            assert_int_equal(ndim, rank);
            size_t numel = 1;
            for (int d = 0; d < rank; d++) {
                assert_int_equal(shape[d], fixture_shapes[rank][d]);
                numel *= (size_t)fixture_shapes[rank][d];
            }
            lb_tensor *t;
            assert_int_equal(lb_safetensors_get(ctx, st, name, &t), LB_OK);
            assert_int_equal(t->dtype, all_dtypes[k]);
            assert_int_equal(t->ndim, rank);
            assert_int_equal(t->numel, numel);
            for (size_t i = 0; i < numel; i++) assert_true(element(t, i) == expected_value(t->dtype, i));
            /* get_into the same bytes */
            void *buf = malloc(t->nbytes ? t->nbytes : 1);
            assert_int_equal(lb_safetensors_get_into(ctx, st, name, all_dtypes[k], rank, shape, buf),
                             LB_OK);
            assert_memory_equal(buf, t->data, t->nbytes ? t->nbytes : 1);
            free(buf);
            lb_tensor_free(t);
        }
    }

    /* BF16 from Python's rounding of "bf16_in": widened, it equals
     * lb_f32_to_bf16 of the inputs bit for bit (NaN payloads included). */
    lb_tensor *in, *bf;
    assert_int_equal(lb_safetensors_get(ctx, st, "bf16_in", &in), LB_OK);
    assert_int_equal(lb_safetensors_get(ctx, st, "bf16", &bf), LB_OK);
    const char *dtype;
    assert_int_equal(lb_safetensors_info(ctx, st, "bf16", &dtype, NULL, NULL), LB_OK);
    assert_string_equal(dtype, "BF16");
    assert_int_equal(bf->dtype, LB_F32);
    assert_int_equal(bf->numel, in->numel);
    for (size_t i = 0; i < in->numel; i++) {
        float want = lb_bf16_to_f32(lb_f32_to_bf16(lb_tensor_f32(in)[i]));
        if (memcmp(&want, &lb_tensor_f32(bf)[i], sizeof want) != 0) {
            print_error("bf16[%zu]: file %a, lowbit %a\n", i, (double)lb_tensor_f32(bf)[i], (double)want);
            fail();
        }
    }
    float bf_into[64];
    assert_true(in->numel <= 64);
    int64_t bf_shape[1] = {(int64_t)in->numel};
    assert_int_equal(lb_safetensors_get_into(ctx, st, "bf16", LB_F32, 1, bf_shape, bf_into), LB_OK);
    assert_memory_equal(bf_into, bf->data, bf->nbytes);
    lb_tensor_free(in);
    lb_tensor_free(bf);

    lb_tensor *t = (lb_tensor *)&t;
    assert_int_equal(lb_safetensors_get(ctx, st, "empty", &t), LB_OK);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->shape[1], 3);
    lb_tensor_free(t);
    int64_t empty_shape[2] = {0, 3};
    assert_int_equal(lb_safetensors_get_into(ctx, st, "empty", LB_F32, 2, empty_shape, NULL), LB_OK);

    /* I64 is listed and described, but lowbit does not convert it */
    int ndim;
    assert_int_equal(lb_safetensors_info(ctx, st, "i64", &dtype, &ndim, NULL), LB_OK);
    assert_string_equal(dtype, "I64");
    t = (lb_tensor *)&t;
    check_error(ctx, lb_safetensors_get(ctx, st, "i64", &t), LB_ERR_UNSUPPORTED, path, "'i64' has dtype I64", "get I64");
    assert_null(t);
    int64_t two[1] = {2};
    int32_t i32buf[2];
    check_error(ctx, lb_safetensors_get_into(ctx, st, "i64", LB_S32, 1, two, i32buf),
                LB_ERR_UNSUPPORTED, path, "I64", "get_into I64");

    /* absent names */
    t = (lb_tensor *)&t;
    check_error(ctx, lb_safetensors_get(ctx, st, "nope", &t), LB_ERR_NOT_FOUND, path, "'nope'", "get absent");
    assert_null(t);
    check_error(ctx, lb_safetensors_info(ctx, st, "nope", NULL, NULL, NULL), LB_ERR_NOT_FOUND, path, "'nope'", "info absent");
    check_error(ctx, lb_safetensors_get_into(ctx, st, "F32_r0", LB_F32, 0, NULL, i32buf), LB_ERR_NOT_FOUND, path, "F32_r0", "case matters");
    assert_int_equal(lb_safetensors_info(ctx, st, "__metadata__", NULL, NULL, NULL), LB_ERR_NOT_FOUND);
    lb_safetensors_free(st);
    lb_safetensors_free(NULL);
    lb_ctx_free(ctx);
}

/* get_into refuses any dtype or shape mismatch, naming the tensor. */
static void test_get_into_mismatch(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    char path[512];
    lb_test_path(path, sizeof path, lb_test_data_dir(), "io/python.safetensors");
    lb_safetensors *st;
    assert_int_equal(lb_safetensors_read(ctx, path, &st), LB_OK);
    float buf[64];
    int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s6[1] = {6}, s231[3] = {2, 3, 1};
    assert_int_equal(lb_safetensors_get_into(ctx, st, "f32_r2", LB_F32, 2, s23, buf), LB_OK);
    check_error(ctx, lb_safetensors_get_into(ctx, st, "f32_r2", LB_F32, 2, s32, buf), LB_ERR_ARG,
                path, "'f32_r2' is F32 (2, 3) in the file, expected f32 (3, 2)", "transposed");
    check_error(ctx, lb_safetensors_get_into(ctx, st, "f32_r2", LB_F32, 1, s6, buf), LB_ERR_ARG,
                path, "expected f32 (6,)", "flattened");
    check_error(ctx, lb_safetensors_get_into(ctx, st, "f32_r2", LB_F32, 3, s231, buf), LB_ERR_ARG,
                path, "f32_r2", "extra dim");
    check_error(ctx, lb_safetensors_get_into(ctx, st, "f32_r2", LB_F64, 2, s23, buf), LB_ERR_ARG,
                path, "expected f64 (2, 3)", "dtype");
    check_error(ctx, lb_safetensors_get_into(ctx, st, "i8_r2", LB_U8, 2, s23, buf), LB_ERR_ARG,
                path, "'i8_r2' is I8", "signedness");
    check_error(ctx, lb_safetensors_get_into(ctx, st, "f32_r2", LB_F32, 2, s23, NULL), LB_ERR_ARG,
                path, "NULL destination", "NULL dst");
    check_error(ctx, lb_safetensors_get_into(ctx, st, "f32_r2", (lb_dtype)77, 2, s23, buf),
                LB_ERR_ARG, path, "unknown expected dtype", "bad dtype");
    check_error(ctx, lb_safetensors_get_into(ctx, st, "f32_r2", LB_F32, 5, s23, buf), LB_ERR_ARG,
                path, "rank", "bad rank");
    int64_t s5[1] = {(int64_t)20};
    check_error(ctx, lb_safetensors_get_into(ctx, st, "bf16", LB_F32, 1, s5, buf), LB_ERR_ARG,
                path, "'bf16' is BF16", "bf16 shape");
    assert_int_equal(lb_safetensors_get_into(ctx, NULL, "x", LB_F32, 0, NULL, buf), LB_ERR_ARG);
    assert_int_equal(lb_safetensors_get_into(ctx, st, NULL, LB_F32, 0, NULL, buf), LB_ERR_ARG);
    lb_safetensors_free(st);
    lb_ctx_free(ctx);
}

/* The writer produces exactly the bytes of the Python-written reference
 * (metadata first, compact JSON, raw UTF-8, escapes, padding, data order). */
static void test_writer_bytes(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    lb_safetensors_writer *w;
    assert_int_equal(lb_safetensors_writer_create(ctx, &w), LB_OK);
    float wv[6];
    int8_t bv[4];
    int32_t sv[1] = {(int32_t)expected_value(LB_S32, 0)};
    uint8_t uv[4];
    for (size_t i = 0; i < 6; i++) wv[i] = (float)expected_value(LB_F32, i);
    for (size_t i = 0; i < 4; i++) bv[i] = (int8_t)expected_value(LB_S8, i);
    for (size_t i = 0; i < 4; i++) uv[i] = (uint8_t)expected_value(LB_U8, i);
    float hv[3] = {1.0f, -2.5f, 3.14159f};
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s3[1] = {3}, s1212[4] = {1, 2, 1, 2};
    assert_int_equal(lb_safetensors_writer_set_metadata(ctx, w, "step", "0"), LB_OK);
    assert_int_equal(lb_safetensors_writer_set_metadata(ctx, w, "note", "a\\b"), LB_OK);
    assert_int_equal(lb_safetensors_writer_set_metadata(ctx, w, "step", "42"), LB_OK); /* replaces */
    assert_int_equal(lb_safetensors_writer_add_raw(ctx, w, "w", LB_F32, 2, s23, wv), LB_OK);
    assert_int_equal(lb_safetensors_writer_add_raw(ctx, w, "b", LB_S8, 1, s4, bv), LB_OK);
    lb_tensor *scalar;
    assert_int_equal(lb_tensor_create(ctx, LB_S32, 0, NULL, &scalar), LB_OK);
    lb_tensor_s32(scalar)[0] = sv[0];
    assert_int_equal(lb_safetensors_writer_add(ctx, w, "s", scalar), LB_OK);
    lb_tensor_s32(scalar)[0] = 0; /* copied at add time */
    lb_tensor_free(scalar);
    assert_int_equal(lb_safetensors_writer_add_bf16(ctx, w, "h", 1, s3, hv), LB_OK);
    assert_int_equal(lb_safetensors_writer_add_raw(ctx, w, "caf\xc3\xa9 \"q\"", LB_U8, 4, s1212, uv), LB_OK);

    char path[512], ref[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "writer_bytes.safetensors");
    lb_test_path(ref, sizeof ref, lb_test_data_dir(), "io/writer_expected.safetensors");
    assert_int_equal(lb_safetensors_writer_save(ctx, w, path), LB_OK);
    size_t la, lb;
    unsigned char *a = slurp(path, &la), *b = slurp(ref, &lb);
    assert_non_null(a);
    assert_non_null(b);
    if (la != lb || memcmp(a, b, la) != 0) {
        print_error("lowbit: %.*s\npython: %.*s\n", (int)la, (const char *)a + 8, (int)lb,
                    (const char *)b + 8);
        fail();
    }
    /* header length is a multiple of 8 */
    assert_int_equal(a[0] % 8, 0);
    free(a);
    free(b);
    lb_safetensors_writer_free(w);
    lb_safetensors_writer_free(NULL);
    lb_ctx_free(ctx);
}

/* Every dtype at ranks 0..4 (and zero-size), BF16 and metadata: saved,
 * read back, equal; saving again replaces the file. */
static void test_round_trip(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    static const int64_t shapes[][LB_MAX_DIMS] = {
        {1}, {7}, {3, 5}, {2, 3, 4}, {2, 3, 1, 5}, {0}, {4, 0}, {2, 0, 2, 1}, {17, 33},
    };
    static const int ranks[] = {0, 1, 2, 3, 4, 1, 2, 4, 2};
    enum { NS = sizeof ranks / sizeof ranks[0] };
    lb_tensor *src[5][NS];
    lb_safetensors_writer *w;
    assert_int_equal(lb_safetensors_writer_create(ctx, &w), LB_OK);
    for (int k = 0; k < 5; k++) {
        for (int s = 0; s < NS; s++) {
            lb_tensor *t;
            assert_int_equal(lb_tensor_create(ctx, all_dtypes[k], ranks[s], shapes[s], &t), LB_OK);
            unsigned char *bytes = t->data;
            for (size_t i = 0; i < t->nbytes; i++) bytes[i] = (unsigned char)(i * 131 + (size_t)k * 7 + (size_t)s);
            char name[32];
            snprintf(name, sizeof name, "%s/%d", st_names[k], s);
            assert_int_equal(lb_safetensors_writer_add(ctx, w, name, t), LB_OK);
            src[k][s] = t;
        }
    }
    float bfin[5] = {0.1f, -1e30f, 65504.0f, 1e-40f, -0.0f};
    int64_t s5[1] = {5};
    assert_int_equal(lb_safetensors_writer_add_bf16(ctx, w, "bf", 1, s5, bfin), LB_OK);
    assert_int_equal(lb_safetensors_writer_set_metadata(ctx, w, "epoch", "3"), LB_OK);
    assert_int_equal(lb_safetensors_writer_set_metadata(ctx, w, "", "empty key"), LB_OK);
    assert_int_equal(lb_safetensors_writer_set_metadata(ctx, w, "quote\"\\\n\t", "ctl\x01\x1f"), LB_OK);

    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "round_trip.safetensors");
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            int64_t s1[1] = {1};
            int8_t one = 1;
            assert_int_equal(lb_safetensors_writer_add_raw(ctx, w, "late", LB_S8, 1, s1, &one), LB_OK);
        }
        assert_int_equal(lb_safetensors_writer_save(ctx, w, path), LB_OK);
        lb_safetensors *st;
        lb_status s = lb_safetensors_read(ctx, path, &st);
        if (s != LB_OK) print_error("%s\n", lb_ctx_error(ctx));
        assert_int_equal(s, LB_OK);
        assert_int_equal(lb_safetensors_count(st), 5 * NS + 1 + (size_t)pass);
        for (int k = 0; k < 5; k++) {
            for (int n = 0; n < NS; n++) {
                char name[32];
                snprintf(name, sizeof name, "%s/%d", st_names[k], n);
                assert_string_equal(lb_safetensors_name(st, (size_t)(k * NS + n)), name);
                lb_tensor *t;
                assert_int_equal(lb_safetensors_get(ctx, st, name, &t), LB_OK);
                const lb_tensor *want = src[k][n];
                assert_int_equal(t->dtype, want->dtype);
                assert_int_equal(t->ndim, want->ndim);
                for (int d = 0; d < LB_MAX_DIMS; d++) assert_int_equal(t->shape[d], want->shape[d]);
                assert_int_equal(t->nbytes, want->nbytes);
                if (t->nbytes) assert_memory_equal(t->data, want->data, t->nbytes);
                lb_tensor_free(t);
            }
        }
        lb_tensor *bf;
        assert_int_equal(lb_safetensors_get(ctx, st, "bf", &bf), LB_OK);
        for (int i = 0; i < 5; i++) {
            float want = lb_bf16_to_f32(lb_f32_to_bf16(bfin[i]));
            assert_memory_equal(&lb_tensor_f32(bf)[i], &want, sizeof want);
        }
        lb_tensor_free(bf);
        assert_string_equal(lb_safetensors_metadata(st, "epoch"), "3");
        assert_string_equal(lb_safetensors_metadata(st, ""), "empty key");
        assert_string_equal(lb_safetensors_metadata(st, "quote\"\\\n\t"), "ctl\x01\x1f");
        lb_safetensors_free(st);
    }
    assert_int_equal(count_temp_files(lb_test_tmp_dir(), "round_trip.safetensors"), 0);

    /* an empty writer makes a valid empty file: "{}" padded to 8 bytes */
    lb_safetensors_writer *empty;
    assert_int_equal(lb_safetensors_writer_create(ctx, &empty), LB_OK);
    assert_int_equal(lb_safetensors_writer_save(ctx, empty, path), LB_OK);
    size_t len;
    unsigned char *bytes = slurp(path, &len);
    assert_non_null(bytes);
    assert_int_equal(len, 16);
    assert_memory_equal(bytes, "\x08\0\0\0\0\0\0\0{}      ", 16);
    free(bytes);
    lb_safetensors *st;
    assert_int_equal(lb_safetensors_read(ctx, path, &st), LB_OK);
    assert_int_equal(lb_safetensors_count(st), 0);
    assert_null(lb_safetensors_name(st, 0));
    assert_null(lb_safetensors_metadata(st, "epoch"));
    lb_safetensors_free(st);
    lb_safetensors_writer_free(empty);

    for (int k = 0; k < 5; k++)
        for (int s = 0; s < NS; s++) lb_tensor_free(src[k][s]);
    lb_safetensors_writer_free(w);
    lb_ctx_free(ctx);
}

/* Reference bfloat16 rounding: the nearer of the two neighbours in double,
 * ties to the even one. */
static uint16_t bf16_reference(float x)
{
    if (isnan(x)) {
        uint32_t b;
        memcpy(&b, &x, 4);
        return (uint16_t)((b >> 16) | 0x40);
    }
    uint32_t b;
    memcpy(&b, &x, 4);
    uint16_t lo = (uint16_t)(b >> 16); /* truncation: toward zero */
    if ((b & 0xffff) == 0) return lo;
    uint16_t hi = (uint16_t)(lo + 1); /* next away from zero (Inf after the max) */
    double dx = x, dlo = lb_bf16_to_f32(lo), dhi = lb_bf16_to_f32(hi);
    if (isinf(dhi)) {
        /* IEEE: round to Inf when |x| >= max + half an ulp of the max */
        dhi = copysign(0x1p128, dx);
    }
    double elo = fabs(dx - dlo), ehi = fabs(dhi - dx);
    if (elo < ehi) return lo;
    if (ehi < elo) return hi;
    return (lo & 1) ? hi : lo;
}

static void test_bf16_rounding(void **state)
{
    (void)state;
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x00000000, 0x0000}, {0x80000000, 0x8000}, {0x3f800000, 0x3f80},
        {0x3f808000, 0x3f80}, /* tie, even kept half: down */
        {0x3f818000, 0x3f82}, /* tie, odd kept half: up */
        {0x3f808001, 0x3f81}, {0x3f807fff, 0x3f80}, {0xbf818000, 0xbf82},
        {0x7f7fffff, 0x7f80}, /* FLT_MAX -> Inf */
        {0x7f7f7fff, 0x7f7f}, {0x7f800000, 0x7f80}, {0xff800000, 0xff80},
        {0x00000001, 0x0000}, {0x00008000, 0x0000}, {0x00018000, 0x0002}, {0x007fffff, 0x0080},
        {0x7fc00000, 0x7fc0}, {0xffc00001, 0xffc0}, {0x7f800001, 0x7fc0}, /* sNaN -> qNaN */
        {0x40490fdb, 0x4049}, {0xc2f6e979, 0xc2f7},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float x;
        memcpy(&x, &cases[c].in, 4);
        uint16_t got = lb_f32_to_bf16(x);
        if (got != cases[c].out) {
            print_error("bf16(0x%08x) = 0x%04x, want 0x%04x\n", cases[c].in, got, cases[c].out);
            fail();
        }
        assert_int_equal(bf16_reference(x), cases[c].out);
        /* widening is exact and inverts narrowing of representable values */
        float back = lb_bf16_to_f32(got);
        if (!isnan(back)) assert_int_equal(lb_f32_to_bf16(back), got);
    }
    /* 2^20 spread bit patterns against the reference */
    uint32_t b = 0x12345678u;
    for (int i = 0; i < (1 << 20); i++) {
        b = b * 1664525u + 1013904223u;
        uint32_t bits = (b & 0xffff0000u) | ((uint32_t)i & 0xffffu); /* every low half */
        if (i % 7 == 0) bits = (bits & 0xffff0000u) | 0x8000u;       /* plenty of ties */
        float x;
        memcpy(&x, &bits, 4);
        uint16_t got = lb_f32_to_bf16(x), want = bf16_reference(x);
        if (got != want) {
            print_error("bf16(0x%08x) = 0x%04x, reference 0x%04x\n", bits, got, want);
            fail();
        }
    }
}

/* One malformed (or hand-written valid) file per row. */
typedef struct st_case {
    const char *what;
    const char *json;       /* header text */
    size_t ndata;           /* data section bytes */
    lb_status want;
    const char *needle;     /* expected in the detail */
} st_case;

#define E(dt, shape, b, e) "{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const st_case json_cases[] = {
    /* valid */
    {"baseline", "{\"a\":" E("F32", "[2]", 0, 8) "}", 8, LB_OK, NULL},
    {"whitespace everywhere", " \n{ \"a\" :\t" E("F32", "[ 2 ]", 0, 8) " }\r\n  ", 8, LB_OK, NULL},
    {"no tensors", "{}", 0, LB_OK, NULL},
    {"metadata only", "{\"__metadata__\":{\"k\":\"v\"}}", 0, LB_OK, NULL},
    {"empty metadata", "{\"__metadata__\":{},\"a\":" E("U8", "[1]", 0, 1) "}", 1, LB_OK, NULL},
    {"zero-size tensors", "{\"z\":" E("F32", "[0,3]", 0, 0) ",\"a\":" E("I8", "[2]", 0, 2) ",\"y\":" E("F64", "[0]", 2, 2) "}", 2, LB_OK, NULL},
    {"offsets out of order", "{\"b\":" E("I8", "[2]", 4, 6) ",\"a\":" E("I32", "[]", 0, 4) "}", 6, LB_OK, NULL},
    {"other dtypes", "{\"a\":" E("F16", "[2]", 0, 4) ",\"b\":" E("BOOL", "[1]", 4, 5) ",\"c\":" E("U64", "[1]", 5, 13) ",\"d\":" E("F8_E4M3", "[3]", 13, 16) "}", 16, LB_OK, NULL},
    {"integral float numbers", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8e0]}}", 8, LB_OK, NULL},
    {"escaped name", "{\"a\\u00e9\\n\":" E("F32", "[2]", 0, 8) "}", 8, LB_OK, NULL},
    {"rank 6", "{\"r6\":" E("F32", "[1,1,1,1,1,2]", 0, 8) "}", 8, LB_OK, NULL},
    /* JSON */
    {"empty object missing brace", "{", 0, LB_ERR_FORMAT, "not valid JSON"},
    {"not JSON", "hello", 0, LB_ERR_FORMAT, "not valid JSON"},
    {"array", "[1,2]", 0, LB_ERR_FORMAT, "an array, not an object"},
    {"string", "\"x\"", 0, LB_ERR_FORMAT, "a string, not an object"},
    {"null", "null", 0, LB_ERR_FORMAT, "null, not an object"},
    {"trailing garbage", "{} x", 0, LB_ERR_FORMAT, "after the JSON object at header byte 3"},
    {"two objects", "{}{}", 0, LB_ERR_FORMAT, "after the JSON object"},
    {"trailing comma", "{\"a\":" E("F32", "[2]", 0, 8) ",}", 8, LB_ERR_FORMAT, "not valid JSON"},
    {"single quotes", "{'a':1}", 0, LB_ERR_FORMAT, "not valid JSON"},
    {"control char", "{\"a\x01\":" E("F32", "[2]", 0, 8) "}", 8, LB_ERR_FORMAT, "control character at byte 3"},
    {"NUL escape in a name", "{\"a\\u0000b\":" E("F32", "[2]", 0, 8) "}", 8, LB_ERR_FORMAT, "\\u0000"},
    {"invalid UTF-8", "{\"a\xff\":" E("F32", "[2]", 0, 8) "}", 8, LB_ERR_FORMAT, "not valid UTF-8"},
    {"overlong UTF-8", "{\"a\xc0\xae\":" E("F32", "[2]", 0, 8) "}", 8, LB_ERR_FORMAT, "not valid UTF-8"},
    {"UTF-8 surrogate", "{\"a\xed\xa0\x80\":" E("F32", "[2]", 0, 8) "}", 8, LB_ERR_FORMAT, "not valid UTF-8"},
    {"deep nesting", "{\"__metadata__\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 0, LB_ERR_FORMAT, "not an object"},
    /* entries */
    {"entry number", "{\"a\":5}", 0, LB_ERR_FORMAT, "tensor 'a': entry is a number"},
    {"entry array", "{\"a\":[0,8]}", 8, LB_ERR_FORMAT, "tensor 'a': entry is an array"},
    {"missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, LB_ERR_FORMAT, "tensor 'a': missing key 'dtype'"},
    {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, LB_ERR_FORMAT, "tensor 'a': missing key 'shape'"},
    {"missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, LB_ERR_FORMAT, "tensor 'a': missing key 'data_offsets'"},
    {"unknown key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, LB_ERR_FORMAT, "tensor 'a': unexpected key 'x'"},
    {"duplicate key in entry", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, LB_ERR_FORMAT, "tensor 'a': duplicate key 'dtype'"},
    /* dtype */
    {"dtype number", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, LB_ERR_FORMAT, "tensor 'a': dtype is a number"},
    {"dtype unknown", "{\"a\":" E("F33", "[2]", 0, 8) "}", 8, LB_ERR_FORMAT, "tensor 'a': unknown dtype 'F33'"},
    {"dtype lower case", "{\"a\":" E("f32", "[2]", 0, 8) "}", 8, LB_ERR_FORMAT, "unknown dtype 'f32'"},
    {"dtype empty", "{\"a\":" E("", "[2]", 0, 8) "}", 8, LB_ERR_FORMAT, "unknown dtype ''"},
    {"dtype sub-byte", "{\"a\":" E("F4", "[2]", 0, 1) "}", 1, LB_ERR_UNSUPPORTED, "tensor 'a': sub-byte dtype F4"},
    /* shape */
    {"shape object", "{\"a\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,8]}}", 8, LB_ERR_FORMAT, "tensor 'a': shape is an object"},
    {"shape number", "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, LB_ERR_FORMAT, "shape is a number, not an array"},
    {"shape string element", "{\"a\":" E("F32", "[\"2\"]", 0, 8) "}", 8, LB_ERR_FORMAT, "tensor 'a': shape[0] is not an integer"},
    {"shape null element", "{\"a\":" E("F32", "[2,null]", 0, 8) "}", 8, LB_ERR_FORMAT, "shape[1] is not an integer"},
    {"shape negative", "{\"a\":" E("F32", "[-2]", 0, 8) "}", 8, LB_ERR_FORMAT, "tensor 'a': shape[0] is negative"},
    {"shape fraction", "{\"a\":" E("F32", "[2.5]", 0, 10) "}", 10, LB_ERR_FORMAT, "shape[0] is not an integer"},
    {"shape huge", "{\"a\":" E("F32", "[1e300]", 0, 8) "}", 8, LB_ERR_FORMAT, "shape[0] is not an integer"},
    {"shape inf", "{\"a\":" E("F32", "[1e999]", 0, 8) "}", 8, LB_ERR_FORMAT, "shape[0] is not an integer"},
    {"shape above 2^53", "{\"a\":" E("U8", "[9007199254740994]", 0, 8) "}", 8, LB_ERR_FORMAT, "shape[0] is not an integer"},
    {"shape count overflow", "{\"a\":" E("U8", "[4294967296,4294967296,2]", 0, 8) "}", 8, LB_ERR_FORMAT, "tensor 'a': shape (4294967296, 4294967296, 2) of U8: size overflows"},
    {"shape byte overflow", "{\"a\":" E("F64", "[4294967296,1073741824,4]", 0, 8) "}", 8, LB_ERR_FORMAT, "size overflows"},
    {"shape big, bytes small", "{\"a\":" E("F32", "[1000000,1000000]", 0, 8) "}", 8, LB_ERR_FORMAT, "needs 4000000000000 bytes but data_offsets [0, 8] hold 8"},
    /* data_offsets */
    {"offsets number", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":8}}", 8, LB_ERR_FORMAT, "tensor 'a': data_offsets must be an array [begin, end]"},
    {"offsets one", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8, LB_ERR_FORMAT, "data_offsets must be an array [begin, end]"},
    {"offsets three", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, LB_ERR_FORMAT, "data_offsets must be an array [begin, end]"},
    {"offsets strings", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",\"8\"]}}", 8, LB_ERR_FORMAT, "data_offsets must hold integers"},
    {"offsets negative", "{\"a\":" E("F32", "[2]", -8, 0) "}", 8, LB_ERR_FORMAT, "data_offsets must hold integers"},
    {"offsets reversed", "{\"a\":" E("F32", "[2]", 8, 0) "}", 8, LB_ERR_FORMAT, "tensor 'a': data_offsets [8, 0] end before they begin"},
    {"offsets past end", "{\"a\":" E("F32", "[2]", 0, 8) "}", 4, LB_ERR_FORMAT, "tensor 'a': data_offsets [0, 8] run past the end of the 4-byte data section"},
    {"offsets far past end", "{\"a\":" E("U8", "[8]", 9007199254740984, 9007199254740992) "}", 8, LB_ERR_FORMAT, "run past the end"},
    {"bytes mismatch", "{\"a\":" E("F32", "[2]", 0, 4) "}", 4, LB_ERR_FORMAT, "tensor 'a': shape (2,) of F32 needs 8 bytes but data_offsets [0, 4] hold 4"},
    {"bytes mismatch bf16", "{\"a\":" E("BF16", "[2,2]", 0, 16) "}", 16, LB_ERR_FORMAT, "shape (2, 2) of BF16 needs 8 bytes"},
    {"bytes mismatch scalar", "{\"a\":" E("F64", "[]", 0, 4) "}", 4, LB_ERR_FORMAT, "shape () of F64 needs 8 bytes"},
    /* layout */
    {"overlap", "{\"a\":" E("F32", "[2]", 0, 8) ",\"b\":" E("F32", "[2]", 4, 12) "}", 12, LB_ERR_FORMAT, "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' (data_offsets [0, 8])"},
    {"same range", "{\"a\":" E("F32", "[2]", 0, 8) ",\"b\":" E("F32", "[2]", 0, 8) "}", 8, LB_ERR_FORMAT, "overlaps tensor"},
    {"zero-size inside", "{\"a\":" E("F32", "[2]", 0, 8) ",\"z\":" E("F32", "[0]", 4, 4) "}", 8, LB_ERR_FORMAT, "tensor 'z' (data_offsets [4, 4]) overlaps tensor 'a'"},
    {"gap", "{\"a\":" E("F32", "[1]", 0, 4) ",\"b\":" E("F32", "[1]", 8, 12) "}", 12, LB_ERR_FORMAT, "gap in the data section: bytes [4, 8) before tensor 'b'"},
    {"leading gap", "{\"a\":" E("F32", "[1]", 4, 8) "}", 8, LB_ERR_FORMAT, "bytes [0, 4) before tensor 'a'"},
    {"trailing bytes", "{\"a\":" E("F32", "[1]", 0, 4) "}", 9, LB_ERR_FORMAT, "the data section has 9 bytes but the tensors cover only 4 (5 trailing bytes)"},
    {"data without tensors", "{}", 3, LB_ERR_FORMAT, "3 trailing bytes"},
    {"duplicate names", "{\"a\":" E("F32", "[1]", 0, 4) ",\"a\":" E("F32", "[1]", 4, 8) "}", 8, LB_ERR_FORMAT, "duplicate tensor name 'a'"},
    /* metadata */
    {"metadata array", "{\"__metadata__\":[\"a\"]}", 0, LB_ERR_FORMAT, "\"__metadata__\" is an array, not an object"},
    {"metadata string", "{\"__metadata__\":\"x\"}", 0, LB_ERR_FORMAT, "\"__metadata__\" is a string"},
    {"metadata number value", "{\"__metadata__\":{\"step\":42}}", 0, LB_ERR_FORMAT, "metadata value of key 'step' is a number"},
    {"metadata null value", "{\"__metadata__\":{\"k\":null}}", 0, LB_ERR_FORMAT, "key 'k' is null"},
    {"metadata object value", "{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, LB_ERR_FORMAT, "key 'k' is an object"},
    {"metadata bool value", "{\"__metadata__\":{\"k\":true}}", 0, LB_ERR_FORMAT, "key 'k' is a boolean"},
    {"metadata duplicate key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, LB_ERR_FORMAT, "duplicate metadata key 'k'"},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, LB_ERR_FORMAT, "duplicate \"__metadata__\""},
};

static void test_malformed_json(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "malformed.safetensors");
    for (size_t c = 0; c < sizeof json_cases / sizeof json_cases[0]; c++) {
        const st_case *sc = &json_cases[c];
        size_t n = strlen(sc->json);
        write_st(path, sc->json, n, n, sc->ndata);
        lb_safetensors *st = (lb_safetensors *)&st;
        lb_ctx_clear_error(ctx);
        lb_status s = lb_safetensors_read(ctx, path, &st);
        check_error(ctx, s, sc->want, sc->want == LB_OK ? NULL : path, sc->needle, sc->what);
        if (sc->want == LB_OK) {
            assert_non_null(st);
            lb_safetensors_free(st);
        } else {
            assert_null(st);
        }
    }
    /* the valid special cases, looked at more closely */
    const char *j = "{\"r6\":" E("F32", "[1,1,1,1,1,2]", 0, 8) ",\"z\":" E("F32", "[0,3]", 8, 8) "}";
    write_st(path, j, strlen(j), strlen(j), 8);
    lb_safetensors *st;
    assert_int_equal(lb_safetensors_read(ctx, path, &st), LB_OK);
    const char *dtype = NULL;
    int ndim = 0;
    check_error(ctx, lb_safetensors_info(ctx, st, "r6", &dtype, &ndim, NULL), LB_ERR_UNSUPPORTED,
                path, "'r6' has 6 dimensions", "rank 6 info");
    assert_string_equal(dtype, "F32");
    assert_int_equal(ndim, 6);
    lb_tensor *t = (lb_tensor *)&t;
    check_error(ctx, lb_safetensors_get(ctx, st, "r6", &t), LB_ERR_UNSUPPORTED, path, "6 dimensions", "rank 6 get");
    assert_null(t);
    assert_int_equal(lb_safetensors_get(ctx, st, "z", &t), LB_OK);
    assert_int_equal(t->numel, 0);
    lb_tensor_free(t);
    lb_safetensors_free(st);

    j = "{\"a\\u00e9\\n\":" E("F32", "[2]", 0, 8) "}";
    write_st(path, j, strlen(j), strlen(j), 8);
    assert_int_equal(lb_safetensors_read(ctx, path, &st), LB_OK);
    assert_string_equal(lb_safetensors_name(st, 0), "a\xc3\xa9\n");
    lb_safetensors_free(st);
    lb_ctx_free(ctx);
}

/* The 8-byte length prefix: too short a file, absurd lengths, zero. */
static void test_header_length(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "length.safetensors");
    const char *json = "{\"a\":" E("F32", "[2]", 0, 8) "}";
    size_t n = strlen(json);
    static const struct {
        uint64_t len;
        const char *needle;
    } cases[] = {
        {0, "empty JSON header"},
        {1, "not valid JSON"},
        {1000, "truncated: header length 1000"},
        {100000001, "exceeds the limit of 100000000 bytes"},
        {0x8000000000000000ull, "header length 9223372036854775808 exceeds"},
        {UINT64_MAX, "header length 18446744073709551615 exceeds"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_st(path, json, n, cases[c].len, 8);
        lb_safetensors *st = (lb_safetensors *)&st;
        check_error(ctx, lb_safetensors_read(ctx, path, &st), LB_ERR_FORMAT, path, cases[c].needle,
                    cases[c].needle);
        assert_null(st);
    }
    /* length one short: JSON cut; one long: the first data byte joins the
     * header (0xa5 is not valid UTF-8 on its own) */
    write_st(path, json, n, n - 1, 8);
    lb_safetensors *st = (lb_safetensors *)&st;
    check_error(ctx, lb_safetensors_read(ctx, path, &st), LB_ERR_FORMAT, path, "JSON", "len - 1");
    write_st(path, json, n, n + 1, 8);
    check_error(ctx, lb_safetensors_read(ctx, path, &st), LB_ERR_FORMAT, path, "UTF-8", "len + 1");
    /* files shorter than the length field */
    for (size_t len = 0; len < 8; len++) {
        assert_int_equal(lb_test_write_file(path, "\x10\0\0\0\0\0\0\0", len), 0);
        check_error(ctx, lb_safetensors_read(ctx, path, &st), LB_ERR_FORMAT, path, "too short", "short file");
        assert_null(st);
    }
    lb_ctx_free(ctx);
}

/* Every proper prefix of two valid files, and the files with a byte
 * appended: a clean LB_ERR_FORMAT naming the file. */
static void test_truncated_prefixes(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    const char *fixtures[] = {"io/writer_expected.safetensors", "io/python.safetensors"};
    char src[512], path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "prefix.safetensors");
    for (size_t f = 0; f < 2; f++) {
        lb_test_path(src, sizeof src, lb_test_data_dir(), fixtures[f]);
        size_t len;
        unsigned char *bytes = slurp(src, &len);
        assert_non_null(bytes);
        for (size_t n = 0; n < len; n++) {
            assert_int_equal(lb_test_write_file(path, bytes, n), 0);
            lb_safetensors *st = (lb_safetensors *)&st;
            char what[600];
            snprintf(what, sizeof what, "%s cut to %zu bytes", fixtures[f], n);
            check_error(ctx, lb_safetensors_read(ctx, path, &st), LB_ERR_FORMAT, path, NULL, what);
            assert_null(st);
        }
        unsigned char *longer = malloc(len + 1);
        assert_non_null(longer);
        memcpy(longer, bytes, len);
        longer[len] = 7;
        assert_int_equal(lb_test_write_file(path, longer, len + 1), 0);
        lb_safetensors *st = (lb_safetensors *)&st;
        check_error(ctx, lb_safetensors_read(ctx, path, &st), LB_ERR_FORMAT, path, "1 trailing bytes", fixtures[f]);
        assert_null(st);
        free(longer);
        free(bytes);
    }
    lb_ctx_free(ctx);
}

/* Overwriting each header byte with a few values never crashes or reads
 * out of bounds: LB_OK or a clean error. */
static void test_header_byte_flips(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    char src[512], path[512];
    lb_test_path(src, sizeof src, lb_test_data_dir(), "io/writer_expected.safetensors");
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "flip.safetensors");
    size_t len;
    unsigned char *bytes = slurp(src, &len);
    assert_non_null(bytes);
    size_t header_end = 8 + bytes[0] + 256u * bytes[1];
    static const unsigned char values[] = {0x00, 0x20, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0xff};
    for (size_t pos = 0; pos < header_end; pos++) {
        for (size_t v = 0; v < sizeof values; v++) {
            unsigned char saved = bytes[pos];
            bytes[pos] = values[v];
            assert_int_equal(lb_test_write_file(path, bytes, len), 0);
            bytes[pos] = saved;
            lb_safetensors *st = NULL;
            lb_status s = lb_safetensors_read(ctx, path, &st);
            assert_true(s == LB_OK || s == LB_ERR_FORMAT || s == LB_ERR_UNSUPPORTED);
            assert_true((s == LB_OK) == (st != NULL));
            if (st) {
                for (size_t i = 0; i < lb_safetensors_count(st); i++) {
                    lb_tensor *t = NULL;
                    if (lb_safetensors_get(ctx, st, lb_safetensors_name(st, i), &t) == LB_OK)
                        lb_tensor_free(t);
                }
            }
            lb_safetensors_free(st);
        }
    }
    free(bytes);
    lb_ctx_free(ctx);
}

/* Writer argument checks: a failed add changes nothing. */
static void test_writer_errors(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    lb_safetensors_writer *w;
    assert_int_equal(lb_safetensors_writer_create(ctx, &w), LB_OK);
    assert_int_equal(lb_safetensors_writer_create(ctx, NULL), LB_ERR_ARG);
    float x[4] = {1, 2, 3, 4};
    int64_t s4[1] = {4}, neg[1] = {-1}, huge[3] = {INT64_MAX, INT64_MAX, 2};
    assert_int_equal(lb_safetensors_writer_add_raw(ctx, w, "x", LB_F32, 1, s4, x), LB_OK);
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, w, "x", LB_F32, 1, s4, x), LB_ERR_ARG, NULL, "duplicate tensor name 'x'", "dup");
    check_error(ctx, lb_safetensors_writer_add_bf16(ctx, w, "x", 1, s4, x), LB_ERR_ARG, NULL, "duplicate", "dup bf16");
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, w, "", LB_F32, 1, s4, x), LB_ERR_ARG, NULL, "empty tensor name", "empty");
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, w, "__metadata__", LB_F32, 1, s4, x), LB_ERR_ARG, NULL, "reserved", "reserved");
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, w, "bad\xff", LB_F32, 1, s4, x), LB_ERR_ARG, NULL, "UTF-8", "utf8");
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, w, "y", (lb_dtype)9, 1, s4, x), LB_ERR_ARG, NULL, "dtype", "dtype");
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, w, "y", LB_F32, 1, neg, x), LB_ERR_ARG, NULL, "tensor 'y': dimension 0 is negative", "negative");
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, w, "y", LB_F32, 5, s4, x), LB_ERR_ARG, NULL, "tensor 'y': tensor rank 5", "rank");
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, w, "y", LB_F32, 3, huge, x), LB_ERR_NOMEM, NULL, "tensor 'y': tensor element count overflows", "overflow");
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, w, "y", LB_F32, 1, s4, NULL), LB_ERR_ARG, NULL, "NULL data", "null data");
    check_error(ctx, lb_safetensors_writer_add_bf16(ctx, w, "y", 1, s4, NULL), LB_ERR_ARG, NULL, "NULL data", "null bf16");
    check_error(ctx, lb_safetensors_writer_add(ctx, w, "y", NULL), LB_ERR_ARG, NULL, "NULL tensor", "null tensor");
    lb_tensor *t;
    assert_int_equal(lb_tensor_create(ctx, LB_F32, 1, s4, &t), LB_OK);
    t->nbytes = 3;
    check_error(ctx, lb_safetensors_writer_add(ctx, w, "y", t), LB_ERR_ARG, NULL, "does not match", "bad tensor");
    lb_tensor_free(t);
    assert_int_equal(lb_safetensors_writer_add_raw(ctx, NULL, "y", LB_F32, 1, s4, x), LB_ERR_ARG);
    assert_int_equal(lb_safetensors_writer_add_raw(ctx, w, NULL, LB_F32, 1, s4, x), LB_ERR_ARG);
    assert_int_equal(lb_safetensors_writer_set_metadata(ctx, w, NULL, "v"), LB_ERR_ARG);
    assert_int_equal(lb_safetensors_writer_set_metadata(ctx, w, "k", NULL), LB_ERR_ARG);
    check_error(ctx, lb_safetensors_writer_set_metadata(ctx, w, "k", "\xc3"), LB_ERR_ARG, NULL, "UTF-8", "meta utf8");
    assert_int_equal(lb_safetensors_writer_save(ctx, w, NULL), LB_ERR_ARG);
    assert_int_equal(lb_safetensors_writer_save(ctx, NULL, "x"), LB_ERR_ARG);
    /* zero elements may come with NULL data */
    int64_t s0[2] = {0, 5};
    assert_int_equal(lb_safetensors_writer_add_raw(ctx, w, "z", LB_S32, 2, s0, NULL), LB_OK);

    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "writer_errors.safetensors");
    assert_int_equal(lb_safetensors_writer_save(ctx, w, path), LB_OK);
    lb_safetensors *st;
    assert_int_equal(lb_safetensors_read(ctx, path, &st), LB_OK);
    assert_int_equal(lb_safetensors_count(st), 2);
    assert_string_equal(lb_safetensors_name(st, 0), "x");
    assert_string_equal(lb_safetensors_name(st, 1), "z");
    assert_int_equal(lb_safetensors_metadata_count(st), 0);
    lb_safetensors_free(st);

    /* reader argument checks */
    st = (lb_safetensors *)&st;
    assert_int_equal(lb_safetensors_read(ctx, NULL, &st), LB_ERR_ARG);
    assert_null(st);
    assert_int_equal(lb_safetensors_read(ctx, path, NULL), LB_ERR_ARG);
    assert_int_equal(lb_safetensors_count(NULL), 0);
    assert_null(lb_safetensors_name(NULL, 0));
    assert_null(lb_safetensors_metadata(NULL, "k"));
    lb_safetensors_writer_free(w);
    lb_ctx_free(ctx);
}

/* Open errors, and saves that fail part-way (the file size limit stands in
 * for a full disk), at the rename (the target is a directory) or at the
 * temporary file (missing or read-only directory): LB_ERR_IO naming the
 * path, the existing file byte-identical, no temporary file left. */
static void test_io_and_atomic_save(void **state)
{
    (void)state;
    lb_ctx *ctx = new_ctx();
    char path[512];
    lb_safetensors *st = (lb_safetensors *)&st;
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "missing.safetensors");
    check_error(ctx, lb_safetensors_read(ctx, path, &st), LB_ERR_IO, path, strerror(ENOENT), "missing");
    assert_null(st);
    check_error(ctx, lb_safetensors_read(ctx, lb_test_tmp_dir(), &st), LB_ERR_IO, lb_test_tmp_dir(), "directory", "dir");

    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "atomic.safetensors");
    lb_safetensors_writer *good, *big;
    assert_int_equal(lb_safetensors_writer_create(ctx, &good), LB_OK);
    assert_int_equal(lb_safetensors_writer_create(ctx, &big), LB_OK);
    float x[3] = {1, 2, 3};
    int64_t s3[1] = {3}, sbig[2] = {300, 300};
    assert_int_equal(lb_safetensors_writer_add_raw(ctx, good, "x", LB_F32, 1, s3, x), LB_OK);
    assert_int_equal(lb_safetensors_writer_set_metadata(ctx, good, "v", "1"), LB_OK);
    assert_int_equal(lb_safetensors_writer_save(ctx, good, path), LB_OK);
    size_t before_len;
    unsigned char *before = slurp(path, &before_len);
    assert_non_null(before);
    float *zeros = calloc(300 * 300, sizeof *zeros);
    assert_non_null(zeros);
    assert_int_equal(lb_safetensors_writer_add_raw(ctx, big, "big", LB_F32, 2, sbig, zeros), LB_OK);
    free(zeros);

    /* a failed add leaves the writer as it was: nothing is written */
    check_error(ctx, lb_safetensors_writer_add_raw(ctx, big, "big", LB_F32, 1, s3, x), LB_ERR_ARG, NULL, "duplicate", "failed add");

    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    struct rlimit lim = saved;
    lim.rlim_cur = 8192;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    lb_status s = lb_safetensors_writer_save(ctx, big, path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);
    check_error(ctx, s, LB_ERR_IO, path, "write", "size limit");

    char dir[512], inner[600];
    lb_test_path(dir, sizeof dir, lb_test_tmp_dir(), "st_target_dir");
    mkdir(dir, 0755);
    check_error(ctx, lb_safetensors_writer_save(ctx, good, dir), LB_ERR_IO, dir, "rename", "over a directory");
    assert_int_equal(count_temp_files(lb_test_tmp_dir(), "st_target_dir"), 0);
    snprintf(inner, sizeof inner, "%s/no/such/dir.safetensors", dir);
    check_error(ctx, lb_safetensors_writer_save(ctx, good, inner), LB_ERR_IO, inner, "temporary", "missing dir");

    size_t after_len;
    unsigned char *after = slurp(path, &after_len);
    assert_non_null(after);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    assert_int_equal(count_temp_files(lb_test_tmp_dir(), "atomic.safetensors"), 0);
    assert_int_equal(lb_safetensors_read(ctx, path, &st), LB_OK);
    assert_string_equal(lb_safetensors_metadata(st, "v"), "1");
    lb_safetensors_free(st);

    if (geteuid() != 0) {
        char ro[512];
        lb_test_path(ro, sizeof ro, lb_test_tmp_dir(), "st_readonly");
        mkdir(ro, 0755);
        snprintf(inner, sizeof inner, "%s/x.safetensors", ro);
        assert_int_equal(lb_safetensors_writer_save(ctx, good, inner), LB_OK);
        assert_int_equal(chmod(ro, 0555), 0);
        check_error(ctx, lb_safetensors_writer_save(ctx, big, inner), LB_ERR_IO, inner, "temporary", "read-only dir");
        assert_int_equal(chmod(ro, 0755), 0);
        assert_int_equal(lb_safetensors_read(ctx, inner, &st), LB_OK);
        assert_int_equal(lb_safetensors_count(st), 1);
        lb_safetensors_free(st);
    }

    /* a file that shrinks after it was opened: reads fail with LB_ERR_IO */
    assert_int_equal(lb_safetensors_writer_save(ctx, big, path), LB_OK);
    assert_int_equal(lb_safetensors_read(ctx, path, &st), LB_OK);
    assert_int_equal(truncate(path, 100), 0);
    lb_tensor *t = (lb_tensor *)&t;
    check_error(ctx, lb_safetensors_get(ctx, st, "big", &t), LB_ERR_IO, path, "file ended", "shrunk");
    assert_null(t);
    lb_safetensors_free(st);

    free(before);
    free(after);
    lb_safetensors_writer_free(good);
    lb_safetensors_writer_free(big);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_fixture),     cmocka_unit_test(test_get_into_mismatch),
        cmocka_unit_test(test_writer_bytes),       cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bf16_rounding),      cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_header_length),      cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_header_byte_flips),  cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_io_and_atomic_save),
    };
    return LB_RUN_TESTS(tests);
}
