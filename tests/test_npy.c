/* tests/test_npy.c — .npy reading and writing: files written by NumPy
 * (tests/gen/io_fixtures.py), byte-identical output, round trips of every
 * dtype and rank, unsupported-but-valid files, every malformed header we
 * could think of, every truncation of a valid file, I/O errors, and the
 * atomic write leaving an existing file intact when writing fails. */
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
#include "lowbit/npy.h"
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

static void set_element(lb_tensor *t, size_t i, double v)
{
    switch (t->dtype) {
    case LB_F32: lb_tensor_f32(t)[i] = (float)v; break;
    case LB_F64: lb_tensor_f64(t)[i] = v; break;
    case LB_S8: lb_tensor_s8(t)[i] = (int8_t)v; break;
    case LB_S32: lb_tensor_s32(t)[i] = (int32_t)v; break;
    case LB_U8: lb_tensor_u8(t)[i] = (uint8_t)v; break;
    }
}

/* Reads a whole file into a malloc'd buffer; NULL if it cannot. */
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

/* Asserts a status and that the detail names `path` and contains `needle`;
 * prints the detail when it does not. */
static void check_error(lb_ctx *ctx, lb_status got, lb_status want, const char *path,
                        const char *needle, const char *what)
{
    const char *msg = lb_ctx_error(ctx);
    if (got != want || (path && !strstr(msg, path)) || (needle && !strstr(msg, needle))) {
        print_error("case '%s': got status %d (%s) want %d, detail: %s\n", what, (int)got,
                    lb_status_str(got), (int)want, msg);
        fail();
    }
}

/* Number of leftover temporary files "<base>.tmp-*" in dir. */
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

/* Builds a .npy file from its parts: version major, the header text (the
 * header length is its size unless len_override >= 0), and ndata data bytes
 * (0x5a). */
static void write_npy_parts(const char *path, unsigned major, const char *header,
                            long long len_override, size_t ndata)
{
    size_t hlen = strlen(header);
    size_t lenbytes = major == 1 ? 2 : 4;
    size_t total = 8 + lenbytes + hlen + ndata;
    unsigned char *buf = malloc(total);
    assert_non_null(buf);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    unsigned long long l = len_override >= 0 ? (unsigned long long)len_override : hlen;
    for (size_t b = 0; b < lenbytes; b++) buf[8 + b] = (unsigned char)(l >> (8 * b));
    memcpy(buf + 8 + lenbytes, header, hlen);
    memset(buf + 8 + lenbytes + hlen, 0x5a, ndata);
    assert_int_equal(lb_test_write_file(path, buf, total), 0);
    free(buf);
}

static const lb_dtype all_dtypes[] = {LB_F32, LB_F64, LB_S8, LB_S32, LB_U8};
static const char *const dtype_keys[] = {"f4", "f8", "i1", "i4", "u1"};
static const int64_t fixture_shapes[5][4] = {{1}, {5}, {2, 3}, {2, 3, 4}, {2, 1, 3, 2}};

/* -------------------------------------------------------------------- tests */

/* Every dtype x rank written by NumPy: dtype, shape and values as the
 * generator's formulas say, and lb_npy_write reproduces NumPy's bytes. */
static void test_numpy_fixtures(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char path[512], out[512];
    for (int k = 0; k < 5; k++) {
        for (int rank = 0; rank <= 4; rank++) {
            char name[64];
            snprintf(name, sizeof name, "io/%s_r%d.npy", dtype_keys[k], rank);
            lb_test_path(path, sizeof path, lb_test_data_dir(), name);
            lb_tensor *t = NULL;
            lb_status st = lb_npy_read(ctx, path, &t);
            if (st != LB_OK) print_error("%s: %s\n", path, lb_ctx_error(ctx));
            assert_int_equal(st, LB_OK);
            assert_int_equal(t->dtype, all_dtypes[k]);
            assert_int_equal(t->ndim, rank);
            size_t numel = 1;
            for (int d = 0; d < rank; d++) {
                assert_int_equal(t->shape[d], fixture_shapes[rank][d]);
                numel *= (size_t)fixture_shapes[rank][d];
            }
            for (int d = rank; d < LB_MAX_DIMS; d++) assert_int_equal(t->shape[d], 1);
            assert_int_equal(t->numel, numel);
            for (size_t i = 0; i < numel; i++)
                assert_true(element(t, i) == expected_value(t->dtype, i));

            snprintf(name, sizeof name, "rewrite_%s_r%d.npy", dtype_keys[k], rank);
            lb_test_path(out, sizeof out, lb_test_tmp_dir(), name);
            assert_int_equal(lb_npy_write(ctx, out, t), LB_OK);
            size_t la, lb;
            unsigned char *a = slurp(path, &la), *b = slurp(out, &lb);
            assert_non_null(a);
            assert_non_null(b);
            assert_int_equal(la, lb);
            assert_memory_equal(a, b, la);
            /* the header NumPy writes: data aligned to 64 bytes */
            assert_int_equal((la - numel * lb_dtype_size(t->dtype)) % 64, 0);
            free(a);
            free(b);
            lb_tensor_free(t);
        }
    }
    lb_ctx_free(ctx);
}

/* Version 2.0 and 3.0 headers, an empty array, IEEE special values, and a
 * 1-D array flagged Fortran-order (same layout, accepted). */
static void test_numpy_variants(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char path[512];
    const char *versions[] = {"io/f4_v2.npy", "io/f4_v3.npy"};
    for (int v = 0; v < 2; v++) {
        lb_tensor *t;
        lb_test_path(path, sizeof path, lb_test_data_dir(), versions[v]);
        assert_int_equal(lb_npy_read(ctx, path, &t), LB_OK);
        assert_int_equal(t->ndim, 2);
        assert_int_equal(t->shape[0], 2);
        assert_int_equal(t->shape[1], 3);
        for (size_t i = 0; i < 6; i++) assert_true(lb_tensor_f32(t)[i] == (float)expected_value(LB_F32, i));
        lb_tensor_free(t);
    }

    lb_tensor *t;
    lb_test_path(path, sizeof path, lb_test_data_dir(), "io/f4_empty.npy");
    assert_int_equal(lb_npy_read(ctx, path, &t), LB_OK);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 0);
    lb_tensor_free(t);

    lb_test_path(path, sizeof path, lb_test_data_dir(), "io/f4_special.npy");
    assert_int_equal(lb_npy_read(ctx, path, &t), LB_OK);
    assert_int_equal(t->numel, 7);
    const float *x = lb_tensor_f32(t);
    assert_true(x[0] == 0.0f && !signbit(x[0]));
    assert_true(x[1] == 0.0f && signbit(x[1]));
    assert_true(isinf(x[2]) && x[2] > 0);
    assert_true(isinf(x[3]) && x[3] < 0);
    assert_true(isnan(x[4]));
    assert_true(x[5] == 0x1p-149f); /* smallest subnormal */
    assert_true(x[6] == 3.4028235e38f);
    lb_tensor_free(t);

    lb_test_path(path, sizeof path, lb_test_data_dir(), "io/f4_r1_fortran.npy");
    assert_int_equal(lb_npy_read(ctx, path, &t), LB_OK);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->shape[0], 5);
    for (size_t i = 0; i < 5; i++) assert_true(lb_tensor_f32(t)[i] == (float)expected_value(LB_F32, i));
    lb_tensor_free(t);
    lb_ctx_free(ctx);
}

/* Valid .npy files outside what lowbit handles: LB_ERR_UNSUPPORTED. */
static void test_unsupported(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    static const struct {
        const char *file, *needle;
    } cases[] = {
        {"io/unsup_bigendian.npy", "big-endian"}, {"io/unsup_fortran.npy", "Fortran"},
        {"io/unsup_i8.npy", "<i8"},               {"io/unsup_f2.npy", "<f2"},
        {"io/unsup_bool.npy", "|b1"},             {"io/unsup_rank5.npy", "5 dimensions"},
        {"io/unsup_structured.npy", "structured"},
    };
    char path[512];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lb_tensor *t = (lb_tensor *)&t; /* must be reset to NULL */
        lb_test_path(path, sizeof path, lb_test_data_dir(), cases[c].file);
        lb_status st = lb_npy_read(ctx, path, &t);
        check_error(ctx, st, LB_ERR_UNSUPPORTED, path, cases[c].needle, cases[c].file);
        assert_null(t);
    }
    lb_ctx_free(ctx);
}

/* Writes then reads every dtype at ranks 0..4 (including zero-size and a
 * larger tensor), with values that cover each type's extremes. */
static void test_round_trip(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    static const int64_t shapes[][LB_MAX_DIMS] = {
        {1}, {7}, {3, 5}, {2, 3, 4}, {2, 3, 1, 5}, {0}, {4, 0}, {3, 0, 2}, {2, 2, 2, 0}, {33, 65},
    };
    static const int ranks[] = {0, 1, 2, 3, 4, 1, 2, 3, 4, 2};
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "round_trip.npy");
    for (int k = 0; k < 5; k++) {
        for (size_t s = 0; s < sizeof ranks / sizeof ranks[0]; s++) {
            lb_tensor *t, *r;
            assert_int_equal(lb_tensor_create(ctx, all_dtypes[k], ranks[s], shapes[s], &t), LB_OK);
            for (size_t i = 0; i < t->numel; i++) {
                double v;
                switch (t->dtype) {
                case LB_F32: v = i % 3 == 0 ? -(double)FLT_MAX : (double)i * 1.1 - 7.3; break;
                case LB_F64: v = i % 3 == 0 ? DBL_MAX : (double)i / 3.0 - 1e300; break;
                case LB_S8: v = i % 2 ? -128.0 : 127.0 - (double)(i % 50); break;
                case LB_S32: v = i % 2 ? (double)INT32_MIN : (double)INT32_MAX - (double)i; break;
                default: v = (double)(255 - i % 256); break;
                }
                set_element(t, i, v);
            }
            assert_int_equal(lb_npy_write(ctx, path, t), LB_OK);
            lb_status st = lb_npy_read(ctx, path, &r);
            if (st != LB_OK) print_error("%s\n", lb_ctx_error(ctx));
            assert_int_equal(st, LB_OK);
            assert_int_equal(r->dtype, t->dtype);
            assert_int_equal(r->ndim, t->ndim);
            for (int d = 0; d < LB_MAX_DIMS; d++) assert_int_equal(r->shape[d], t->shape[d]);
            assert_int_equal(r->nbytes, t->nbytes);
            if (t->nbytes) assert_memory_equal(r->data, t->data, t->nbytes);
            lb_tensor_free(t);
            lb_tensor_free(r);
        }
    }
    assert_int_equal(count_temp_files(lb_test_tmp_dir(), "round_trip.npy"), 0);
    lb_ctx_free(ctx);
}

/* One malformed (or hand-written valid) header per row. */
typedef struct header_case {
    const char *what;
    unsigned major;
    const char *header;
    long long len_override; /* -1: the header's length */
    size_t ndata;
    lb_status want;
    const char *needle;
} header_case;

static void test_malformed_headers(void **state)
{
    (void)state;
    static const header_case cases[] = {
        /* valid, written by hand in the forms Python's repr allows */
        {"baseline", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", -1, 8, LB_OK, NULL},
        {"no padding, no trailing comma", 1, "{'descr':'<f4','fortran_order':False,'shape':(2,)}", -1, 8, LB_OK, NULL},
        {"double quotes, key order", 1, "{\"shape\": (2, 1), \"fortran_order\": False, \"descr\": \"<i4\"}  \n", -1, 8, LB_OK, NULL},
        {"scalar", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }\n", -1, 8, LB_OK, NULL},
        {"version 2", 2, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 1,), }\n", -1, 3, LB_OK, NULL},
        {"python 2 long", 1, "{'descr': '<i1', 'fortran_order': False, 'shape': (2L,), }\n", -1, 2, LB_OK, NULL},
        {"zero size", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }\n", -1, 0, LB_OK, NULL},
        {"zero size, huge other dim", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 9223372036854775807), }\n", -1, 0, LB_OK, NULL},
        /* version */
        {"version 0", 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", -1, 8, LB_ERR_FORMAT, "version 0.0"},
        {"version 4", 4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", -1, 8, LB_ERR_FORMAT, "version 4.0"},
        /* header length */
        {"header length past end", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 1000, 8, LB_ERR_FORMAT, "header length 1000"},
        {"header length 4 GB", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 0xffffffffLL, 8, LB_ERR_FORMAT, "header length 4294967295"},
        {"header length 0", 1, "", 0, 0, LB_ERR_FORMAT, "expected '{'"},
        {"header length cuts dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 20, 8, LB_ERR_FORMAT, "bad .npy header"},
        /* dict syntax */
        {"not a dict", 1, "['descr', '<f4']\n", -1, 0, LB_ERR_FORMAT, "expected '{'"},
        {"unclosed dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), \n", -1, 8, LB_ERR_FORMAT, "quoted string"},
        {"missing comma", 1, "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "expected ',' or '}'"},
        {"missing colon", 1, "{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "expected ':'"},
        {"unquoted key", 1, "{descr: '<f4', 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "quoted string"},
        {"unterminated string", 1, "{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "expected ':'"},
        {"string runs to end", 1, "{'descr': '<f4", -1, 0, LB_ERR_FORMAT, "unterminated string"},
        {"escape in string", 1, "{'descr': '<f\\4', 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "escape"},
        {"text after dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x\n", -1, 8, LB_ERR_FORMAT, "after the dict"},
        {"two dicts", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}{}\n", -1, 8, LB_ERR_FORMAT, "after the dict"},
        {"missing descr", 1, "{'fortran_order': False, 'shape': (2,), }\n", -1, 8, LB_ERR_FORMAT, "missing key 'descr'"},
        {"missing fortran_order", 1, "{'descr': '<f4', 'shape': (2,), }\n", -1, 8, LB_ERR_FORMAT, "missing key 'fortran_order'"},
        {"missing shape", 1, "{'descr': '<f4', 'fortran_order': False, }\n", -1, 8, LB_ERR_FORMAT, "missing key 'shape'"},
        {"empty dict", 1, "{}\n", -1, 0, LB_ERR_FORMAT, "missing key"},
        {"duplicate descr", 1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "duplicate key 'descr'"},
        {"duplicate shape", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "duplicate key 'shape'"},
        {"duplicate fortran_order", 1, "{'descr': '<f4', 'fortran_order': False, 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "duplicate key 'fortran_order'"},
        {"extra key", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}\n", -1, 8, LB_ERR_FORMAT, "unexpected key 'extra'"},
        /* values */
        {"fortran_order 0", 1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "True or False"},
        {"fortran_order Truex", 1, "{'descr': '<f4', 'fortran_order': Truex, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "True or False"},
        {"fortran_order 'False'", 1, "{'descr': '<f4', 'fortran_order': 'False', 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "True or False"},
        {"descr not a string", 1, "{'descr': 4, 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "quoted string"},
        {"descr nonsense", 1, "{'descr': 'hello', 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "'hello' is not a dtype"},
        {"descr empty", 1, "{'descr': '', 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "is not a dtype"},
        {"descr too long", 1, "{'descr': '<f4444444444444444444444444444444444444', 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_FORMAT, "too long"},
        {"descr big-endian f8", 1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,)}\n", -1, 16, LB_ERR_UNSUPPORTED, "big-endian"},
        {"descr complex", 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,)}\n", -1, 16, LB_ERR_UNSUPPORTED, "'<c8'"},
        {"descr native f4", 1, "{'descr': '=f4', 'fortran_order': False, 'shape': (2,)}\n", -1, 8, LB_ERR_UNSUPPORTED, "'=f4'"},
        {"shape int", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}\n", -1, 8, LB_ERR_FORMAT, "not a tuple"},
        {"shape list", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}\n", -1, 8, LB_ERR_FORMAT, "must be a tuple"},
        {"shape bare int", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': 2}\n", -1, 8, LB_ERR_FORMAT, "must be a tuple"},
        {"shape negative", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}\n", -1, 8, LB_ERR_FORMAT, "negative dimension"},
        {"shape negative second", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}\n", -1, 8, LB_ERR_FORMAT, "negative dimension"},
        {"shape float", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}\n", -1, 8, LB_ERR_FORMAT, "non-negative integer"},
        {"shape hex", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0x2,)}\n", -1, 8, LB_ERR_FORMAT, "non-negative integer"},
        {"shape leading zero", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (02,)}\n", -1, 8, LB_ERR_FORMAT, "leading zero"},
        {"shape double comma", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,,)}\n", -1, 8, LB_ERR_FORMAT, "non-negative integer"},
        {"shape missing comma", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}\n", -1, 24, LB_ERR_FORMAT, "expected ',' or ')'"},
        {"shape unclosed", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", -1, 24, LB_ERR_FORMAT, "expected ',' or ')'"},
        {"shape > int64", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775808,)}\n", -1, 8, LB_ERR_FORMAT, "overflows int64"},
        {"shape 20 digits", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n", -1, 8, LB_ERR_FORMAT, "overflows int64"},
        {"shape element count overflow", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2)}\n", -1, 8, LB_ERR_FORMAT, "element count overflows"},
        {"shape byte count overflow", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3037000500, 3037000500)}\n", -1, 8, LB_ERR_FORMAT, "byte count overflows"},
        {"shape rank 5", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 2)}\n", -1, 8, LB_ERR_UNSUPPORTED, "5 dimensions"},
        {"fortran 2-D", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1)}\n", -1, 8, LB_ERR_UNSUPPORTED, "Fortran"},
        /* data size */
        {"data short", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", -1, 7, LB_ERR_FORMAT, "needs 8 data bytes, the file has 7"},
        {"data missing", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", -1, 0, LB_ERR_FORMAT, "needs 24 data bytes"},
        {"data long", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", -1, 9, LB_ERR_FORMAT, "1 unexpected bytes"},
        {"data for empty", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }\n", -1, 4, LB_ERR_FORMAT, "4 unexpected bytes"},
        {"huge shape, little data", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000)}\n", -1, 8, LB_ERR_FORMAT, "the file has 8"},
    };
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "malformed.npy");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const header_case *hc = &cases[c];
        write_npy_parts(path, hc->major, hc->header, hc->len_override, hc->ndata);
        lb_tensor *t = (lb_tensor *)&t;
        lb_ctx_clear_error(ctx);
        lb_status st = lb_npy_read(ctx, path, &t);
        check_error(ctx, st, hc->want, hc->want == LB_OK ? NULL : path, hc->needle, hc->what);
        if (hc->want == LB_OK) {
            assert_non_null(t);
            lb_tensor_free(t);
        } else {
            assert_null(t);
        }
    }
    /* A NUL byte inside the header text. */
    static const char nul_header[] = "{'descr': '<f4', 'fortran_order': False,\0 'shape': (2,)}\n";
    unsigned char buf[128];
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(sizeof nul_header - 1);
    buf[9] = 0;
    memcpy(buf + 10, nul_header, sizeof nul_header - 1);
    memset(buf + 10 + sizeof nul_header - 1, 0, 8);
    assert_int_equal(lb_test_write_file(path, buf, 10 + sizeof nul_header - 1 + 8), 0);
    lb_tensor *t = (lb_tensor *)&t;
    check_error(ctx, lb_npy_read(ctx, path, &t), LB_ERR_FORMAT, path, "header byte 40", "NUL in header");
    assert_null(t);
    lb_ctx_free(ctx);
}

/* The first bytes of the file are checked before anything else. */
static void test_bad_magic(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "magic.npy");
#define BYTES(s) s, sizeof s - 1
    static const struct {
        const char *bytes;
        size_t len;
        const char *needle;
    } cases[] = {
        {BYTES("\x93NUMPZ\x01\x00\x10\x00{}"), "bad magic"},
        {BYTES("PK\x03\x04 a zip file, e.g. .npz"), "bad magic"},
        {BYTES("\x93numpy\x01\x00\x10\x00{}"), "bad magic"},
        {BYTES("x"), "bad magic"},
        {BYTES("\x93NUM"), "preamble"},
        {BYTES("\x93NUMPY\x01"), "preamble"},
        {BYTES("\x93NUMPY\x01\x00\x00"), "preamble needs 10"},
        {BYTES("\x93NUMPY\x02\x00\x00\x00\x00"), "preamble needs 12"},
        {BYTES(""), "preamble"},
    };
#undef BYTES
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        assert_int_equal(lb_test_write_file(path, cases[c].bytes, cases[c].len), 0);
        lb_tensor *t = (lb_tensor *)&t;
        lb_status st = lb_npy_read(ctx, path, &t);
        check_error(ctx, st, LB_ERR_FORMAT, path, cases[c].needle, cases[c].bytes);
        assert_null(t);
    }
    lb_ctx_free(ctx);
}

/* Every proper prefix of valid files (v1, v2, scalar, empty) and the file
 * with one byte appended: a clean LB_ERR_FORMAT naming the file. */
static void test_truncated_prefixes(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    const char *fixtures[] = {"io/f4_r2.npy", "io/f8_r3.npy", "io/f4_v2.npy", "io/i1_r0.npy",
                              "io/f4_empty.npy"};
    char src[512], path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "prefix.npy");
    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        lb_test_path(src, sizeof src, lb_test_data_dir(), fixtures[f]);
        size_t len;
        unsigned char *bytes = slurp(src, &len);
        assert_non_null(bytes);
        for (size_t n = 0; n < len; n++) {
            assert_int_equal(lb_test_write_file(path, bytes, n), 0);
            lb_tensor *t = (lb_tensor *)&t;
            lb_status st = lb_npy_read(ctx, path, &t);
            char what[600];
            snprintf(what, sizeof what, "%s cut to %zu bytes", fixtures[f], n);
            check_error(ctx, st, LB_ERR_FORMAT, path, NULL, what);
            assert_null(t);
        }
        unsigned char *longer = malloc(len + 1);
        assert_non_null(longer);
        memcpy(longer, bytes, len);
        longer[len] = 0;
        assert_int_equal(lb_test_write_file(path, longer, len + 1), 0);
        lb_tensor *t = (lb_tensor *)&t;
        check_error(ctx, lb_npy_read(ctx, path, &t), LB_ERR_FORMAT, path, "1 unexpected bytes",
                    fixtures[f]);
        assert_null(t);
        free(longer);
        free(bytes);
    }
    lb_ctx_free(ctx);
}

/* Flipping each header byte to a few values never crashes or reads out of
 * bounds: the result is LB_OK or a clean error. */
static void test_header_byte_flips(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char src[512], path[512];
    lb_test_path(src, sizeof src, lb_test_data_dir(), "io/f4_r2.npy");
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "flip.npy");
    size_t len;
    unsigned char *bytes = slurp(src, &len);
    assert_non_null(bytes);
    static const unsigned char values[] = {0x00, 0x20, 0x27, 0x29, 0x2c, 0x7b, 0x7d, 0xff};
    for (size_t pos = 0; pos < 128 && pos < len; pos++) {
        for (size_t v = 0; v < sizeof values; v++) {
            unsigned char saved = bytes[pos];
            bytes[pos] = values[v];
            assert_int_equal(lb_test_write_file(path, bytes, len), 0);
            bytes[pos] = saved;
            lb_tensor *t = NULL;
            lb_status st = lb_npy_read(ctx, path, &t);
            assert_true(st == LB_OK || st == LB_ERR_FORMAT || st == LB_ERR_UNSUPPORTED);
            assert_true((st == LB_OK) == (t != NULL));
            lb_tensor_free(t);
        }
    }
    free(bytes);
    lb_ctx_free(ctx);
}

/* Open and write failures: LB_ERR_IO with the path and the system's reason. */
static void test_io_errors(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char path[512];
    lb_tensor *t = (lb_tensor *)&t;
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "does_not_exist.npy");
    check_error(ctx, lb_npy_read(ctx, path, &t), LB_ERR_IO, path, strerror(ENOENT), "missing file");
    assert_null(t);
    check_error(ctx, lb_npy_read(ctx, lb_test_tmp_dir(), &t), LB_ERR_IO, lb_test_tmp_dir(),
                "not a regular file", "directory");

    int64_t shape[1] = {3};
    assert_int_equal(lb_tensor_create(ctx, LB_F32, 1, shape, &t), LB_OK);
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "no_such_dir/x.npy");
    check_error(ctx, lb_npy_write(ctx, path, t), LB_ERR_IO, path, strerror(ENOENT), "write into missing dir");
    /* the target is an existing directory: the final rename fails, the
     * temporary file is removed */
    char dir[512];
    lb_test_path(dir, sizeof dir, lb_test_tmp_dir(), "npy_target_dir");
    mkdir(dir, 0755);
    check_error(ctx, lb_npy_write(ctx, dir, t), LB_ERR_IO, dir, "rename", "write over a directory");
    assert_int_equal(count_temp_files(lb_test_tmp_dir(), "npy_target_dir"), 0);

    /* argument checks */
    assert_int_equal(lb_npy_read(ctx, path, NULL), LB_ERR_ARG);
    lb_tensor *other = (lb_tensor *)&other;
    assert_int_equal(lb_npy_read(ctx, NULL, &other), LB_ERR_ARG);
    assert_null(other);
    assert_int_equal(lb_npy_write(ctx, NULL, t), LB_ERR_ARG);
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "arg.npy");
    assert_int_equal(lb_npy_write(ctx, path, NULL), LB_ERR_ARG);
    assert_int_equal(lb_npy_write(ctx, "", t), LB_ERR_ARG);
    lb_tensor bad = *t;
    bad.nbytes = 7;
    check_error(ctx, lb_npy_write(ctx, path, &bad), LB_ERR_ARG, path, "nbytes", "inconsistent tensor");
    bad = *t;
    bad.dtype = (lb_dtype)99;
    assert_int_equal(lb_npy_write(ctx, path, &bad), LB_ERR_ARG);
    bad = *t;
    bad.ndim = 5;
    assert_int_equal(lb_npy_write(ctx, path, &bad), LB_ERR_ARG);
    lb_tensor_free(t);
    /* and a NULL context is allowed */
    t = (lb_tensor *)&t;
    assert_int_equal(lb_npy_read(NULL, "/nonexistent/x.npy", &t), LB_ERR_IO);
    assert_null(t);
    lb_ctx_free(ctx);
}

/* A write that fails part-way (the file size limit stands in for a full
 * disk) leaves the existing file byte-identical and no temporary file. */
static void test_atomic_write_failure(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "atomic.npy");
    int64_t small_shape[2] = {2, 3}, big_shape[2] = {256, 256};
    lb_tensor *good, *big;
    assert_int_equal(lb_tensor_create(ctx, LB_F32, 2, small_shape, &good), LB_OK);
    for (size_t i = 0; i < good->numel; i++) lb_tensor_f32(good)[i] = (float)i;
    assert_int_equal(lb_npy_write(ctx, path, good), LB_OK);
    size_t before_len;
    unsigned char *before = slurp(path, &before_len);
    assert_non_null(before);
    assert_int_equal(lb_tensor_create(ctx, LB_F32, 2, big_shape, &big), LB_OK);

    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    struct rlimit lim = saved;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    lb_status st = lb_npy_write(ctx, path, big);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);
    check_error(ctx, st, LB_ERR_IO, path, "write", "write past the size limit");

    size_t after_len;
    unsigned char *after = slurp(path, &after_len);
    assert_non_null(after);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    assert_int_equal(count_temp_files(lb_test_tmp_dir(), "atomic.npy"), 0);
    lb_tensor *r;
    assert_int_equal(lb_npy_read(ctx, path, &r), LB_OK);
    assert_memory_equal(r->data, good->data, good->nbytes);
    lb_tensor_free(r);

    /* Without root, a read-only directory refuses the temporary file. */
    if (geteuid() != 0) {
        char dir[512], inner[600];
        lb_test_path(dir, sizeof dir, lb_test_tmp_dir(), "npy_readonly");
        mkdir(dir, 0755);
        snprintf(inner, sizeof inner, "%s/x.npy", dir);
        assert_int_equal(lb_npy_write(ctx, inner, good), LB_OK);
        assert_int_equal(chmod(dir, 0555), 0);
        check_error(ctx, lb_npy_write(ctx, inner, big), LB_ERR_IO, inner, "temporary", "read-only dir");
        assert_int_equal(chmod(dir, 0755), 0);
        assert_int_equal(lb_npy_read(ctx, inner, &r), LB_OK);
        assert_int_equal(r->numel, good->numel);
        lb_tensor_free(r);
    }
    free(before);
    free(after);
    lb_tensor_free(good);
    lb_tensor_free(big);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numpy_fixtures),     cmocka_unit_test(test_numpy_variants),
        cmocka_unit_test(test_unsupported),        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed_headers),  cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_truncated_prefixes), cmocka_unit_test(test_header_byte_flips),
        cmocka_unit_test(test_io_errors),          cmocka_unit_test(test_atomic_write_failure),
    };
    return LB_RUN_TESTS(tests);
}
