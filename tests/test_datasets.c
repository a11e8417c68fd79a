/* tests/test_datasets.c — IDX loader, R lazy-load parser, Gutenberg
 * cleaning, corpus splits, LM windows, deterministic shuffling/batching.
 *
 * The malformed-input tests build their files here (zlib-compressed IDX
 * files, XDR blobs) in the scratch directory. Tests on the real
 * Fashion-MNIST package or the fetched corpora SKIP when those are absent.
 */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>
#include <unistd.h>
#include <zlib.h>

#include "lowbit/lowbit.h"
#include "lowbit/datasets.h"
#include "test_util.h"

/* ---------------------------------------------------------------------- */
/* helpers                                                                */
/* ---------------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes bytes gzip-compressed to dir/name; returns the path in buf. */
static const char *write_gz(char *buf, size_t n, const char *name, const void *bytes, size_t len)
{
    lb_test_path(buf, n, lb_test_tmp_dir(), name);
    gzFile gz = gzopen(buf, "wb");
    assert_non_null(gz);
    if (len) assert_int_equal(gzwrite(gz, bytes, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
    return buf;
}

/* An IDX image file in memory: header (magic, n, rows, cols) + n*rows*cols
 * pixels with pixel k = (7 k + 3) mod 256, truncated/extended by `extra`. */
static uint8_t *idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
                           long extra, size_t *len)
{
    size_t full = 16 + (size_t)n * rows * cols;
    size_t total = (size_t)((long)full + extra);
    uint8_t *b = calloc(total > full ? total : full, 1);
    put_be32(b, magic);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t k = 0; k + 16 < full; k++) b[16 + k] = (uint8_t)((7 * k + 3) % 256);
    *len = total;
    return b;
}

static uint8_t *idx_labels(uint32_t magic, uint32_t n, const uint8_t *labels, size_t *len)
{
    uint8_t *b = calloc(8 + n, 1);
    put_be32(b, magic);
    put_be32(b + 4, n);
    memcpy(b + 8, labels, n);
    *len = 8 + n;
    return b;
}

static bool contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* ---------------------------------------------------------------------- */
/* IDX / Fashion-MNIST                                                    */
/* ---------------------------------------------------------------------- */

static void test_idx_valid(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    size_t li, ll;
    uint8_t *img = idx_images(0x803, 5, 3, 4, 0, &li);
    const uint8_t lab[5] = {0, 9, 3, 3, 7};
    uint8_t *lbl = idx_labels(0x801, 5, lab, &ll);
    char pi[512], pl[512];
    write_gz(pi, sizeof pi, "idx_ok_images.gz", img, li);
    write_gz(pl, sizeof pl, "idx_ok_labels.gz", lbl, ll);

    lb_image_set *set;
    assert_int_equal(lb_image_set_load_idx(ctx, pi, pl, 10, &set), LB_OK);
    assert_int_equal(set->count, 5);
    assert_int_equal(set->rows, 3);
    assert_int_equal(set->cols, 4);
    assert_int_equal(set->images->ndim, 3);
    assert_memory_equal(lb_tensor_u8(set->images), img + 16, 60);
    assert_memory_equal(lb_tensor_u8(set->labels), lab, 5);

    int64_t counts[10];
    double mean, std;
    lb_image_set_stats(set, counts, &mean, &std);
    assert_int_equal(counts[3], 2);
    assert_int_equal(counts[1], 0);
    double s1 = 0, s2 = 0;
    for (int k = 0; k < 60; k++) {
        s1 += img[16 + k];
        s2 += (double)img[16 + k] * img[16 + k];
    }
    assert_true(fabs(mean - s1 / 60 / 255) < 1e-12);
    assert_true(fabs(std - sqrt(s2 / 60 - (s1 / 60) * (s1 / 60)) / 255) < 1e-12);

    /* normalised batch: rows 4 and 1 */
    const int64_t idx[2] = {4, 1};
    float x[2 * 12];
    int32_t y[2];
    assert_int_equal(lb_image_set_batch_f32(ctx, set, idx, 2, 0.25f, 0.5f, x, y), LB_OK);
    assert_int_equal(y[0], 7);
    assert_int_equal(y[1], 9);
    for (int k = 0; k < 12; k++) {
        assert_true(x[k] == ((float)img[16 + 4 * 12 + k] / 255.0f - 0.25f) / 0.5f);
        assert_true(x[12 + k] == ((float)img[16 + 12 + k] / 255.0f - 0.25f) / 0.5f);
    }
    const int64_t bad_idx[1] = {5};
    assert_int_equal(lb_image_set_batch_f32(ctx, set, bad_idx, 1, 0, 1, x, y), LB_ERR_ARG);
    assert_int_equal(lb_image_set_batch_f32(ctx, set, idx, 2, 0, 0, x, y), LB_ERR_ARG);
    lb_image_set_free(set);
    lb_image_set_free(NULL);

    /* a plain (uncompressed) IDX file reads the same */
    char plain[512];
    lb_test_path(plain, sizeof plain, lb_test_tmp_dir(), "idx_plain_images");
    assert_int_equal(lb_test_write_file(plain, img, li), 0);
    lb_tensor *t;
    assert_int_equal(lb_idx_read_images(ctx, plain, &t), LB_OK);
    assert_memory_equal(lb_tensor_u8(t), img + 16, 60);
    lb_tensor_free(t);
    free(img);
    free(lbl);
    lb_ctx_free(ctx);
}

static void expect_format(lb_ctx *ctx, lb_status st, const char *path, const char *word)
{
    assert_int_equal(st, LB_ERR_FORMAT);
    if (!contains(lb_ctx_error(ctx), path) || (word && !contains(lb_ctx_error(ctx), word)))
        fail_msg("detail '%s' should name '%s' and say '%s'", lb_ctx_error(ctx), path,
                 word ? word : "");
}

static void test_idx_malformed(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char p[512], q[512];
    size_t len;
    lb_tensor *t = (lb_tensor *)1;

    /* wrong magic: a label file read as images, and a wrong type byte */
    uint8_t *b = idx_images(0x801, 2, 2, 2, 0, &len);
    write_gz(p, sizeof p, "idx_bad_magic.gz", b, len);
    expect_format(ctx, lb_idx_read_images(ctx, p, &t), p, "magic");
    assert_null(t);
    free(b);
    b = idx_images(0x80b, 2, 2, 2, 0, &len);
    write_gz(p, sizeof p, "idx_bad_magic2.gz", b, len);
    expect_format(ctx, lb_idx_read_images(ctx, p, &t), p, "magic");
    free(b);

    /* truncated payload (one byte short), truncated header */
    b = idx_images(0x803, 3, 2, 2, -1, &len);
    write_gz(p, sizeof p, "idx_truncated.gz", b, len);
    expect_format(ctx, lb_idx_read_images(ctx, p, &t), p, "truncated");
    write_gz(p, sizeof p, "idx_truncated_header.gz", b, 10);
    expect_format(ctx, lb_idx_read_images(ctx, p, &t), p, "truncated");
    write_gz(p, sizeof p, "idx_empty.gz", b, 0);
    expect_format(ctx, lb_idx_read_images(ctx, p, &t), p, "truncated");
    free(b);

    /* trailing bytes after the last pixel */
    b = idx_images(0x803, 3, 2, 2, 5, &len);
    write_gz(p, sizeof p, "idx_trailing.gz", b, len);
    expect_format(ctx, lb_idx_read_images(ctx, p, &t), p, "after the last");
    free(b);

    /* zero-size image, negative count */
    b = idx_images(0x803, 3, 0, 2, 0, &len);
    write_gz(p, sizeof p, "idx_zero_rows.gz", b, len);
    expect_format(ctx, lb_idx_read_images(ctx, p, &t), p, NULL);
    free(b);
    b = idx_images(0x803, 0, 2, 2, 0, &len);
    put_be32(b + 4, 0x80000000u);
    write_gz(p, sizeof p, "idx_negative.gz", b, len);
    expect_format(ctx, lb_idx_read_images(ctx, p, &t), p, "negative");
    free(b);

    /* a gzip stream cut in the middle (compressed bytes missing) */
    b = idx_images(0x803, 40, 8, 8, 0, &len);
    write_gz(p, sizeof p, "idx_full.gz", b, len);
    {
        FILE *f = fopen(p, "rb");
        uint8_t gzbytes[8192];
        size_t glen = fread(gzbytes, 1, sizeof gzbytes, f);
        fclose(f);
        assert_true(glen > 40);
        lb_test_path(q, sizeof q, lb_test_tmp_dir(), "idx_cut.gz");
        assert_int_equal(lb_test_write_file(q, gzbytes, glen / 2), 0);
        expect_format(ctx, lb_idx_read_images(ctx, q, &t), q, NULL);
    }
    free(b);

    /* count mismatch between images and labels */
    lb_image_set *set = (lb_image_set *)1;
    b = idx_images(0x803, 3, 2, 2, 0, &len);
    write_gz(p, sizeof p, "idx_three_images.gz", b, len);
    free(b);
    const uint8_t lab[4] = {1, 2, 3, 4};
    b = idx_labels(0x801, 4, lab, &len);
    write_gz(q, sizeof q, "idx_four_labels.gz", b, len);
    expect_format(ctx, lb_image_set_load_idx(ctx, p, q, 10, &set), q, "labels");
    assert_true(contains(lb_ctx_error(ctx), p));
    assert_null(set);
    free(b);

    /* label out of range (10 with 10 classes); 9 is fine */
    const uint8_t lab_bad[3] = {9, 10, 0};
    b = idx_labels(0x801, 3, lab_bad, &len);
    write_gz(q, sizeof q, "idx_bad_label.gz", b, len);
    expect_format(ctx, lb_idx_read_labels(ctx, q, 10, &t), q, "label 10");
    assert_int_equal(lb_idx_read_labels(ctx, q, 11, &t), LB_OK);
    lb_tensor_free(t);
    /* labels truncated / wrong magic */
    write_gz(q, sizeof q, "idx_labels_short.gz", b, len - 1);
    expect_format(ctx, lb_idx_read_labels(ctx, q, 11, &t), q, "truncated");
    free(b);
    b = idx_labels(0x803, 3, lab_bad, &len);
    write_gz(q, sizeof q, "idx_labels_magic.gz", b, len);
    expect_format(ctx, lb_idx_read_labels(ctx, q, 11, &t), q, "magic");
    free(b);

    /* missing file */
    lb_test_path(p, sizeof p, lb_test_tmp_dir(), "idx_does_not_exist.gz");
    assert_int_equal(lb_idx_read_images(ctx, p, &t), LB_ERR_NOT_FOUND);
    assert_true(contains(lb_ctx_error(ctx), p));
    lb_ctx_free(ctx);
}

/* A Fashion-MNIST-shaped directory built from small files. */
static void make_fake_fashion_dir(const char *dir, uint32_t rows)
{
    mkdir(dir, 0755);
    char p[512];
    size_t len;
    const uint8_t lab[6] = {0, 1, 2, 9, 9, 5};
    static const char *const pre[2] = {"train", "t10k"};
    for (int s = 0; s < 2; s++) {
        uint32_t n = s == 0 ? 6 : 2;
        uint8_t *b = idx_images(0x803, n, rows, 28, 0, &len);
        char name[256];
        snprintf(name, sizeof name, "%s/%s-images-idx3-ubyte.gz", dir, pre[s]);
        snprintf(p, sizeof p, "%s", name);
        gzFile gz = gzopen(p, "wb");
        gzwrite(gz, b, (unsigned)len);
        gzclose(gz);
        free(b);
        b = idx_labels(0x801, n, lab, &len);
        snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", dir, pre[s]);
        gz = gzopen(p, "wb");
        gzwrite(gz, b, (unsigned)len);
        gzclose(gz);
        free(b);
    }
}

static void test_fashion_mnist_paths(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char dir[512], p[600];
    lb_image_set *set;

    /* directory resolution */
    unsetenv(LB_FASHION_MNIST_ENV);
    assert_string_equal(lb_fashion_mnist_dir(NULL), LB_FASHION_MNIST_DIR);
    assert_string_equal(lb_fashion_mnist_dir(""), LB_FASHION_MNIST_DIR);
    assert_string_equal(lb_fashion_mnist_dir("/x"), "/x");
    setenv(LB_FASHION_MNIST_ENV, "/from/env", 1);
    assert_string_equal(lb_fashion_mnist_dir(NULL), "/from/env");
    assert_string_equal(lb_fashion_mnist_dir("/x"), "/x");

    /* missing directory (taken from the environment) */
    assert_int_equal(lb_fashion_mnist_load(ctx, NULL, LB_SPLIT_TRAIN, &set), LB_ERR_NOT_FOUND);
    assert_true(contains(lb_ctx_error(ctx), "/from/env"));
    assert_true(contains(lb_ctx_error(ctx), "apt-get install dataset-fashion-mnist"));
    unsetenv(LB_FASHION_MNIST_ENV);

    /* existing directory, missing files */
    lb_test_path(dir, sizeof dir, lb_test_tmp_dir(), "fmnist_empty");
    mkdir(dir, 0755);
    assert_int_equal(lb_fashion_mnist_load(ctx, dir, LB_SPLIT_TEST, &set), LB_ERR_NOT_FOUND);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
    assert_true(contains(lb_ctx_error(ctx), p));
    assert_true(contains(lb_ctx_error(ctx), "dataset-fashion-mnist"));

    /* a small well-formed directory */
    lb_test_path(dir, sizeof dir, lb_test_tmp_dir(), "fmnist_small");
    make_fake_fashion_dir(dir, 28);
    assert_int_equal(lb_fashion_mnist_load(ctx, dir, LB_SPLIT_TRAIN, &set), LB_OK);
    assert_int_equal(set->count, 6);
    assert_int_equal(set->num_classes, 10);
    lb_image_set_free(set);
    assert_int_equal(lb_fashion_mnist_load(ctx, dir, LB_SPLIT_TEST, &set), LB_OK);
    assert_int_equal(set->count, 2);
    lb_image_set_free(set);
    /* wrong image size */
    lb_test_path(dir, sizeof dir, lb_test_tmp_dir(), "fmnist_27");
    make_fake_fashion_dir(dir, 27);
    assert_int_equal(lb_fashion_mnist_load(ctx, dir, LB_SPLIT_TRAIN, &set), LB_ERR_FORMAT);
    assert_true(contains(lb_ctx_error(ctx), "27x28"));

    assert_string_equal(lb_fashion_mnist_class_name(0), "T-shirt/top");
    assert_string_equal(lb_fashion_mnist_class_name(9), "Ankle boot");
    assert_string_equal(lb_fashion_mnist_class_name(10), "?");
    lb_ctx_free(ctx);
}

static void test_fashion_mnist_real(void **state)
{
    (void)state;
    struct stat st;
    char probe[600];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", LB_FASHION_MNIST_DIR);
    if (stat(probe, &st) != 0) skip(); /* package dataset-fashion-mnist not installed */
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    static const int64_t expected[2] = {LB_FASHION_MNIST_TRAIN_COUNT, LB_FASHION_MNIST_TEST_COUNT};
    for (int s = 0; s < 2; s++) {
        lb_image_set *set;
        lb_status rc = lb_fashion_mnist_load(ctx, LB_FASHION_MNIST_DIR, (lb_data_split)s, &set);
        if (rc != LB_OK) fail_msg("%s", lb_ctx_error(ctx));
        assert_int_equal(set->count, expected[s]);
        assert_int_equal(set->rows, 28);
        assert_int_equal(set->cols, 28);
        int64_t counts[10];
        double mean, std;
        lb_image_set_stats(set, counts, &mean, &std);
        for (int c = 0; c < 10; c++) assert_int_equal(counts[c], expected[s] / 10);
        if (s == 0) {
            /* the documented normalisation constants come from here */
            assert_true(fabs(mean - LB_FASHION_MNIST_MEAN) < 5e-5);
            assert_true(fabs(std - LB_FASHION_MNIST_STD) < 5e-5);
        }
        lb_image_set_free(set);
    }
    lb_ctx_free(ctx);
}

/* ---------------------------------------------------------------------- */
/* R lazy-load objects                                                    */
/* ---------------------------------------------------------------------- */

typedef struct byte_buf {
    uint8_t data[4096];
    size_t len;
} byte_buf;

static void bb_int(byte_buf *b, int32_t v)
{
    put_be32(b->data + b->len, (uint32_t)v);
    b->len += 4;
}

static void bb_bytes(byte_buf *b, const void *p, size_t n)
{
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* XDR serialization of a character vector; NULL entries are NA. */
static void xdr_strings(byte_buf *b, int version, int32_t type, const char *const *s, int n)
{
    b->len = 0;
    bb_bytes(b, "X\n", 2);
    bb_int(b, version);
    bb_int(b, 0x40201); /* R 4.2.1 */
    bb_int(b, 0x30500); /* R 3.5.0 */
    if (version == 3) {
        bb_int(b, 5);
        bb_bytes(b, "UTF-8", 5);
    }
    bb_int(b, type);
    bb_int(b, n);
    for (int i = 0; i < n; i++) {
        bb_int(b, 0x40009);
        if (!s[i]) {
            bb_int(b, -1);
        } else {
            bb_int(b, (int32_t)strlen(s[i]));
            bb_bytes(b, s[i], strlen(s[i]));
        }
    }
}

/* blob = BE32(declared) + zlib(raw) */
static size_t make_blob(uint8_t *out, size_t cap, const byte_buf *raw, uint32_t declared)
{
    uLongf clen = (uLongf)(cap - 4);
    assert_int_equal(compress2(out + 4, &clen, raw->data, (uLong)raw->len, 9), Z_OK);
    put_be32(out, declared);
    return 4 + (size_t)clen;
}

static void test_rdata_valid(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    const char *lines[] = {"CHAPTER I", "", NULL, "Emma Woodhouse, handsome", "\xc2\xa3"};
    byte_buf raw;
    uint8_t blob[8192];
    for (int version = 2; version <= 3; version++) {
        xdr_strings(&raw, version, 16, lines, 5);
        size_t n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
        uint8_t *text;
        size_t len, count;
        assert_int_equal(lb_rdata_read_strings(ctx, blob, n, &text, &len, &count), LB_OK);
        const char expect[] = "CHAPTER I\n\nEmma Woodhouse, handsome\n\xc2\xa3\n";
        assert_int_equal(len, sizeof expect - 1);
        assert_memory_equal(text, expect, len);
        assert_int_equal(count, 4);
        lb_free(text);
    }
    /* empty vector; attributes after the vector are ignored */
    xdr_strings(&raw, 3, 16, lines, 0);
    size_t n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    uint8_t *text;
    size_t len, count;
    assert_int_equal(lb_rdata_read_strings(ctx, blob, n, &text, &len, &count), LB_OK);
    assert_int_equal(len, 0);
    assert_int_equal(count, 0);
    lb_free(text);
    xdr_strings(&raw, 3, 16 | (1 << 9), lines, 2);
    bb_int(&raw, 0x402); /* start of an attribute pairlist: not parsed */
    bb_int(&raw, 0xfe);
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    assert_int_equal(lb_rdata_read_strings(ctx, blob, n, &text, &len, &count), LB_OK);
    assert_int_equal(len, 11);
    lb_free(text);
    lb_ctx_free(ctx);
}

static void expect_rdata_error(lb_ctx *ctx, const uint8_t *blob, size_t n, const char *word)
{
    uint8_t *text = (uint8_t *)1;
    size_t len, count;
    assert_int_equal(lb_rdata_read_strings(ctx, blob, n, &text, &len, &count), LB_ERR_FORMAT);
    assert_null(text);
    if (word && !contains(lb_ctx_error(ctx), word))
        fail_msg("detail '%s' should say '%s'", lb_ctx_error(ctx), word);
}

static void test_rdata_malformed(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    const char *lines[] = {"alpha", "beta", "gamma"};
    byte_buf raw;
    uint8_t blob[8192];
    size_t n;

    /* shorter than the length prefix */
    expect_rdata_error(ctx, (const uint8_t *)"\0\0", 2, "shorter");

    /* truncated zlib stream */
    xdr_strings(&raw, 3, 16, lines, 3);
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n - 5, "zlib");
    /* corrupt zlib stream */
    uint8_t bad[8192];
    memcpy(bad, blob, n);
    bad[4] ^= 0xff;
    expect_rdata_error(ctx, bad, n, "zlib");
    /* declared length disagrees with the stream, both ways */
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len - 1);
    expect_rdata_error(ctx, blob, n, "zlib");
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len + 1);
    expect_rdata_error(ctx, blob, n, "zlib");
    /* absurd declared length */
    n = make_blob(blob, sizeof blob, &raw, 0x7fffffffu);
    expect_rdata_error(ctx, blob, n, "limit");

    /* not XDR */
    xdr_strings(&raw, 3, 16, lines, 3);
    raw.data[0] = 'A';
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "XDR");
    /* unknown serialization version */
    xdr_strings(&raw, 3, 16, lines, 3);
    put_be32(raw.data + 2, 4);
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "version");
    /* wrong type tag: an integer vector (INTSXP = 13) */
    xdr_strings(&raw, 3, 13, lines, 3);
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "character vector");
    /* an element that is not a CHARSXP */
    xdr_strings(&raw, 3, 16, lines, 3);
    put_be32(raw.data + 31 + 8 + 5, 0x40010); /* flags of element 1 */
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "CHARSXP");
    /* vector length overflow: more elements than bytes */
    xdr_strings(&raw, 3, 16, lines, 3);
    put_be32(raw.data + 27, 0x7fffffff);
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "exceeds");
    /* negative vector length (a long vector) */
    put_be32(raw.data + 27, 0xffffffffu);
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "not supported");
    /* element length overflow: past the end, and negative other than NA */
    xdr_strings(&raw, 3, 16, lines, 3);
    put_be32(raw.data + 31 + 4, 0x7ffffff0);
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "length");
    put_be32(raw.data + 31 + 4, (uint32_t)-7);
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "length -7");
    /* the last element cut short (vector truncated inside the stream) */
    xdr_strings(&raw, 3, 16, lines, 3);
    raw.len -= 2;
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "element 2");
    /* header truncated */
    xdr_strings(&raw, 3, 16, lines, 3);
    raw.len = 10;
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "truncated");
    /* trailing bytes without an attribute flag */
    xdr_strings(&raw, 3, 16, lines, 3);
    bb_int(&raw, 0);
    n = make_blob(blob, sizeof blob, &raw, (uint32_t)raw.len);
    expect_rdata_error(ctx, blob, n, "unexpected");
    lb_ctx_free(ctx);
}

/* ---------------------------------------------------------------------- */
/* Gutenberg cleaning, splits, corpora                                    */
/* ---------------------------------------------------------------------- */

static void check_clean(const char *in, const char *expect)
{
    size_t n = strlen(in);
    uint8_t *buf = malloc(n + 1);
    memcpy(buf, in, n);
    size_t m = lb_text_clean_gutenberg(buf, n);
    if (m != strlen(expect) || memcmp(buf, expect, m) != 0)
        fail_msg("clean(\"%s\") gave \"%.*s\", expected \"%s\"", in, (int)m, (const char *)buf,
                 expect);
    free(buf);
}

static void test_gutenberg_clean(void **state)
{
    (void)state;
    /* plain text is unchanged */
    check_clean("Call me Ishmael.\nSome years ago.\n", "Call me Ishmael.\nSome years ago.\n");
    check_clean("", "");
    /* BOM and CRLF; a lone CR is kept */
    check_clean("\xef\xbb\xbfHello\r\nWorld\r\n", "Hello\nWorld\n");
    check_clean("a\rb\r\n\r\n", "a\rb\n\n");
    check_clean("\xef\xbb", "\xef\xbb");
    /* full boilerplate */
    check_clean("\xef\xbb\xbfThe Project Gutenberg EBook of X\r\n\r\n"
                "*** START OF THIS PROJECT GUTENBERG EBOOK X ***\r\n\r\n\r\n"
                "Chapter 1\r\n\r\nText.\r\n\r\n\r\n"
                "End of Project Gutenberg's X, by Y\r\n\r\n"
                "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\r\n"
                "licence\r\n*** START: FULL LICENSE ***\r\n",
                "Chapter 1\n\nText.\n");
    /* newer marker spelling, lower case, no closing line */
    check_clean("header\n*** Start of the Project Gutenberg eBook Y ***\nBody\n"
                "*** end of the project gutenberg ebook y ***\nfooter\n",
                "Body\n");
    /* START only; END only */
    check_clean("h\n*** START OF X ***\n\nBody\n", "Body\n");
    check_clean("Body\n\n\n*** END OF X ***\nfooter", "Body\n");
    /* a marker must begin a line */
    check_clean("say *** START OF it\n", "say *** START OF it\n");
    /* nothing between the markers */
    check_clean("*** START OF X\n*** END OF X\n", "");
}

static void test_split_sizes(void **state)
{
    (void)state;
    size_t t, v;
    assert_int_equal(lb_text_split_sizes(NULL, 100, 0.1, &t, &v), LB_OK);
    assert_int_equal(t, 90);
    assert_int_equal(v, 10);
    assert_int_equal(lb_text_split_sizes(NULL, 7, 0.5, &t, &v), LB_OK);
    assert_int_equal(v, 3);
    assert_int_equal(t, 4);
    assert_int_equal(lb_text_split_sizes(NULL, 7, 0.0, &t, &v), LB_OK);
    assert_int_equal(v, 0);
    assert_int_equal(lb_text_split_sizes(NULL, 0, 0.3, &t, &v), LB_OK);
    assert_int_equal(t + v, 0);
    assert_int_equal(lb_text_split_sizes(NULL, 10, 1.0, &t, &v), LB_ERR_ARG);
    assert_int_equal(lb_text_split_sizes(NULL, 10, -0.1, &t, &v), LB_ERR_ARG);
    assert_int_equal(lb_text_split_sizes(NULL, 10, NAN, &t, &v), LB_ERR_ARG);
}

static void test_corpus_files(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char a[512], b[512], e[512], spec[1600];
    lb_test_path(a, sizeof a, lb_test_tmp_dir(), "corpus_a.txt");
    lb_test_path(b, sizeof b, lb_test_tmp_dir(), "corpus_b.txt");
    lb_test_path(e, sizeof e, lb_test_tmp_dir(), "corpus_empty.txt");
    const char ta[] = "\xef\xbb\xbf" "0123456789\r\nabcdefghi\r\n"; /* 21 bytes cleaned */
    const char tb[] = "ABCDEFGH";                                 /* 8 bytes */
    assert_int_equal(lb_test_write_file(a, ta, sizeof ta - 1), 0);
    assert_int_equal(lb_test_write_file(b, tb, sizeof tb - 1), 0);
    assert_int_equal(lb_test_write_file(e, "\xef\xbb\xbf", 3), 0);

    lb_text_corpus *c;
    const char *paths[2] = {a, b};
    assert_int_equal(lb_text_corpus_load_files(ctx, paths, 2, 0.25, &c), LB_OK);
    /* a: 21 bytes -> 16 + floor(5.25) = 5; b: 8 bytes -> 6 + 2 */
    assert_int_equal(c->train_len, 22);
    assert_int_equal(c->val_len, 7);
    assert_int_equal(c->num_parts, 2);
    assert_memory_equal(c->train, "0123456789\nabcdeABCDEF", 22);
    assert_memory_equal(c->val, "fghi\nGH", 7);
    lb_text_corpus_free(c);

    /* the same through a comma-separated spec with the default fraction 0.1 */
    snprintf(spec, sizeof spec, "%s,%s", a, b);
    assert_int_equal(lb_text_corpus_load(ctx, spec, -1.0, &c), LB_OK);
    /* a: floor(2.1) = 2 held out; b: floor(0.8) = 0 */
    assert_int_equal(c->train_len, 19 + 8);
    assert_int_equal(c->val_len, 2);
    lb_text_corpus_free(c);
    lb_text_corpus_free(NULL);

    /* errors: empty after cleaning, missing file, empty list entry, bad fraction */
    snprintf(spec, sizeof spec, "%s,%s", a, e);
    assert_int_equal(lb_text_corpus_load(ctx, spec, -1.0, &c), LB_ERR_FORMAT);
    assert_true(contains(lb_ctx_error(ctx), e));
    snprintf(spec, sizeof spec, "%s,%s/no_such_file.txt", a, lb_test_tmp_dir());
    assert_int_equal(lb_text_corpus_load(ctx, spec, -1.0, &c), LB_ERR_NOT_FOUND);
    assert_true(contains(lb_ctx_error(ctx), "no_such_file.txt"));
    snprintf(spec, sizeof spec, "%s,", a);
    assert_int_equal(lb_text_corpus_load(ctx, spec, -1.0, &c), LB_ERR_ARG);
    assert_int_equal(lb_text_corpus_load(ctx, a, 1.0, &c), LB_ERR_ARG);
    lb_ctx_free(ctx);
}

static void test_cache_dir_and_locate(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char *saved_data = getenv(LB_DATA_DIR_ENV) ? strdup(getenv(LB_DATA_DIR_ENV)) : NULL;
    char *saved_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    char buf[1024];

    setenv(LB_DATA_DIR_ENV, "/d", 1);
    setenv("XDG_CACHE_HOME", "/x", 1);
    assert_int_equal(lb_data_cache_dir(ctx, buf, sizeof buf), LB_OK);
    assert_string_equal(buf, "/d");
    setenv(LB_DATA_DIR_ENV, "", 1);
    assert_int_equal(lb_data_cache_dir(ctx, buf, sizeof buf), LB_OK);
    assert_string_equal(buf, "/x/lowbit");
    unsetenv("XDG_CACHE_HOME");
    assert_int_equal(lb_data_cache_dir(ctx, buf, sizeof buf), LB_OK);
    char expect[1024];
    snprintf(expect, sizeof expect, "%s/.cache/lowbit", getenv("HOME"));
    assert_string_equal(buf, expect);
    assert_int_equal(lb_data_cache_dir(ctx, buf, 4), LB_ERR_ARG);

    /* a fake cache with the moby-dick package tree */
    char cache[512], path[1024];
    lb_test_path(cache, sizeof cache, lb_test_tmp_dir(), "cache");
    setenv(LB_DATA_DIR_ENV, cache, 1);
    struct stat st;
    bool system_default = stat("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb", &st) == 0;
    if (!system_default) {
        assert_int_equal(lb_text_corpus_locate(ctx, "default", path, sizeof path),
                         LB_ERR_NOT_FOUND);
        assert_true(contains(lb_ctx_error(ctx), "scripts/fetch-corpus.sh default"));
        assert_true(contains(lb_ctx_error(ctx), "apt-get download r-cran-janeaustenr"));
        assert_true(contains(lb_ctx_error(ctx), cache));
        lb_text_corpus *c;
        assert_int_equal(lb_text_corpus_load(ctx, "default", -1, &c), LB_ERR_NOT_FOUND);
    }
    const char *dirs[] = {"", "/golang-github-colinmarc-hdfs-dev", "/golang-github-colinmarc-hdfs-dev/usr",
                          "/golang-github-colinmarc-hdfs-dev/usr/share",
                          "/golang-github-colinmarc-hdfs-dev/usr/share/gocode",
                          "/golang-github-colinmarc-hdfs-dev/usr/share/gocode/src",
                          "/golang-github-colinmarc-hdfs-dev/usr/share/gocode/src/github.com",
                          "/golang-github-colinmarc-hdfs-dev/usr/share/gocode/src/github.com/colinmarc",
                          "/golang-github-colinmarc-hdfs-dev/usr/share/gocode/src/github.com/colinmarc/hdfs",
                          "/golang-github-colinmarc-hdfs-dev/usr/share/gocode/src/github.com/colinmarc/hdfs/testdata"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s%s", cache, dirs[i]);
        mkdir(path, 0755);
    }
    char fake[1024];
    snprintf(fake, sizeof fake, "%s%s/mobydick.txt", cache, dirs[9]);
    const char text[] = "\xef\xbb\xbfJunk\r\n*** START OF THE BOOK\r\nCall me Ishmael.\r\n"
                        "*** END OF THE BOOK\r\n";
    assert_int_equal(lb_test_write_file(fake, text, sizeof text - 1), 0);
    assert_int_equal(lb_text_corpus_locate(ctx, "moby-dick", path, sizeof path), LB_OK);
    assert_string_equal(path, fake);
    lb_text_corpus *c;
    assert_int_equal(lb_text_corpus_load(ctx, "moby-dick", 0.0, &c), LB_OK);
    assert_int_equal(c->train_len, 17);
    assert_memory_equal(c->train, "Call me Ishmael.\n", 17);
    lb_text_corpus_free(c);
    assert_int_equal(lb_text_corpus_locate(ctx, "nonsense", path, sizeof path), LB_ERR_ARG);

    if (saved_data) setenv(LB_DATA_DIR_ENV, saved_data, 1);
    else unsetenv(LB_DATA_DIR_ENV);
    if (saved_xdg) setenv("XDG_CACHE_HOME", saved_xdg, 1);
    free(saved_data);
    free(saved_xdg);
    lb_ctx_free(ctx);
}

static void test_austen_real(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char path[4096];
    if (lb_text_corpus_locate(ctx, "default", path, sizeof path) != LB_OK) {
        lb_ctx_free(ctx);
        skip(); /* run scripts/fetch-corpus.sh to enable */
    }
    uint8_t *books[LB_AUSTEN_BOOKS];
    size_t lens[LB_AUSTEN_BOOKS];
    lb_status st = lb_austen_read_books(ctx, path, books, lens);
    if (st != LB_OK) fail_msg("%s", lb_ctx_error(ctx));
    static const size_t expect[LB_AUSTEN_BOOKS] = {883028, 883280, 433411,
                                                   466854, 684768, 673688};
    size_t total = 0;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int b = 0; b < LB_AUSTEN_BOOKS; b++) {
        assert_int_equal(lens[b], expect[b]);
        total += lens[b];
        crc = crc32(crc, books[b], (uInt)lens[b]);
        lb_free(books[b]);
    }
    assert_int_equal(total, 4025029);
    /* CRC-32 of the concatenation whose sha256 is 65b434d1...dcc96 */
    assert_int_equal(crc, 0x610578f2u);
    assert_string_equal(lb_austen_book_name(3), "persuasion");
    assert_null(lb_austen_book_name(6));

    lb_text_corpus *c;
    assert_int_equal(lb_text_corpus_load(ctx, "default", -1.0, &c), LB_OK);
    assert_int_equal(c->val_len, 466854);
    assert_int_equal(c->train_len, 4025029 - 466854);
    assert_memory_equal(c->train, "EMMA\n", 5);
    uint64_t counts[256];
    lb_byte_histogram(c->train, c->train_len, counts);
    lb_byte_histogram(c->val, c->val_len, counts); /* overwritten: just exercise */
    lb_text_corpus_free(c);
    assert_int_equal(lb_text_corpus_load(ctx, "default", 0.0, &c), LB_OK);
    assert_int_equal(c->train_len, 4025029);
    uint64_t all[256];
    lb_byte_histogram(c->train, c->train_len, all);
    int distinct = 0;
    for (int v = 0; v < 256; v++) distinct += all[v] > 0;
    assert_int_equal(distinct, 82);
    lb_text_corpus_free(c);

    /* a damaged copy is a format error naming the file */
    uint8_t *rdb;
    size_t rdb_len;
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    rdb = malloc(2000000);
    rdb_len = fread(rdb, 1, 2000000, f);
    fclose(f);
    char bad[512];
    lb_test_path(bad, sizeof bad, lb_test_tmp_dir(), "Rdata_truncated.rdb");
    assert_int_equal(lb_test_write_file(bad, rdb, rdb_len - 1000), 0);
    assert_int_equal(lb_austen_read_books(ctx, bad, books, lens), LB_ERR_FORMAT);
    assert_true(contains(lb_ctx_error(ctx), bad));
    assert_null(books[0]);
    free(rdb);
    lb_ctx_free(ctx);
}

static void test_moby_dick_real(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    char path[4096];
    if (lb_text_corpus_locate(ctx, "moby-dick", path, sizeof path) != LB_OK) {
        lb_ctx_free(ctx);
        skip(); /* run scripts/fetch-corpus.sh moby-dick to enable */
    }
    lb_text_corpus *c;
    assert_int_equal(lb_text_corpus_load(ctx, "moby-dick", 0.0, &c), LB_OK);
    /* the cleaned text of mobydick.txt from hdfs 2.3.0-2 (sha256 870fe077...f0f8) */
    assert_int_equal(c->train_len, 1215800);
    assert_null(memchr(c->train, '\r', c->train_len));
    assert_memory_equal(c->train, "Produced by", 11);
    const char tail[] = "only found another\norphan.\n";
    assert_memory_equal(c->train + c->train_len - (sizeof tail - 1), tail, sizeof tail - 1);
    lb_text_corpus_free(c);
    lb_ctx_free(ctx);
}

static void test_entropy(void **state)
{
    (void)state;
    uint64_t counts[256];
    const uint8_t four[8] = {'a', 'b', 'c', 'd', 'd', 'c', 'b', 'a'};
    lb_byte_histogram(four, 8, counts);
    assert_int_equal(counts['a'], 2);
    assert_true(fabs(lb_unigram_entropy_bits(counts) - 2.0) < 1e-15);
    lb_byte_histogram(four, 1, counts);
    assert_true(lb_unigram_entropy_bits(counts) == 0.0);
    lb_byte_histogram(four, 0, counts);
    assert_true(lb_unigram_entropy_bits(counts) == 0.0);
    /* p = (1/2, 1/4, 1/4) -> 1.5 bits */
    const uint8_t three[4] = {0, 0, 255, 7};
    lb_byte_histogram(three, 4, counts);
    assert_true(fabs(lb_unigram_entropy_bits(counts) - 1.5) < 1e-15);
}

/* ---------------------------------------------------------------------- */
/* LM windows                                                             */
/* ---------------------------------------------------------------------- */

static void test_text_windows(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    uint8_t data[1000];
    for (int i = 0; i < 1000; i++) data[i] = (uint8_t)(i * 13 + i / 256);
    enum { T = 16, B = 8 };
    int32_t tok[B * (T + 1)], tok2[B * (T + 1)];
    uint64_t starts[B], starts2[B];
    assert_int_equal(lb_text_sample_windows(ctx, data, 1000, T, 42, 5, B, tok, starts), LB_OK);
    const uint64_t stream = lb_rng_stream("text-window", 5);
    for (int b = 0; b < B; b++) {
        /* the documented index mapping */
        uint64_t s = (uint64_t)(lb_rng_uniform_f64(42, stream, (uint64_t)b) * (1000 - T));
        assert_int_equal(starts[b], s);
        assert_true(starts[b] + T < 1000);
        for (int t = 0; t <= T; t++) assert_int_equal(tok[b * (T + 1) + t], data[starts[b] + t]);
    }
    /* same (seed, step) -> same; other step or seed -> different */
    assert_int_equal(lb_text_sample_windows(ctx, data, 1000, T, 42, 5, B, tok2, starts2), LB_OK);
    assert_memory_equal(tok, tok2, sizeof tok);
    assert_int_equal(lb_text_sample_windows(ctx, data, 1000, T, 42, 6, B, tok2, starts2), LB_OK);
    assert_memory_not_equal(starts, starts2, sizeof starts);
    assert_int_equal(lb_text_sample_windows(ctx, data, 1000, T, 43, 5, B, tok2, starts2), LB_OK);
    assert_memory_not_equal(starts, starts2, sizeof starts);
    /* a text of T + 2 bytes has exactly two starts; both occur in 256 rows
     * (a miss has probability 2^-255) */
    int32_t small[256 * 3];
    uint64_t st2[256];
    assert_int_equal(lb_text_sample_windows(ctx, data, 4, 2, 1, 0, 256, small, st2), LB_OK);
    int seen[2] = {0, 0};
    for (int b = 0; b < 256; b++) {
        assert_true(st2[b] <= 1);
        seen[st2[b]] = 1;
    }
    assert_true(seen[0] && seen[1]);
    /* exactly T + 1 bytes: the only window */
    assert_int_equal(lb_text_sample_windows(ctx, data, 3, 2, 1, 0, 4, small, st2), LB_OK);
    for (int b = 0; b < 4; b++) assert_int_equal(st2[b], 0);
    /* too short, T = 0 */
    assert_int_equal(lb_text_sample_windows(ctx, data, 2, 2, 1, 0, 1, small, NULL), LB_ERR_ARG);
    assert_int_equal(lb_text_sample_windows(ctx, data, 10, 0, 1, 0, 1, small, NULL), LB_ERR_ARG);

    /* evaluation windows: 10 bytes, T = 3 -> windows at 0, 3, 6 */
    assert_int_equal(lb_text_num_eval_windows(10, 3), 3);
    assert_int_equal(lb_text_num_eval_windows(9, 3), 2);
    assert_int_equal(lb_text_num_eval_windows(0, 3), 0);
    int32_t ev[4 * 4];
    size_t taken;
    assert_int_equal(lb_text_eval_windows(ctx, data, 10, 3, 1, 4, ev, &taken), LB_OK);
    assert_int_equal(taken, 2);
    for (int t = 0; t < 4; t++) {
        assert_int_equal(ev[t], data[3 + t]);
        assert_int_equal(ev[4 + t], data[6 + t]);
    }
    assert_int_equal(lb_text_eval_windows(ctx, data, 10, 3, 3, 4, ev, &taken), LB_OK);
    assert_int_equal(taken, 0);
    assert_int_equal(lb_text_eval_windows(ctx, data, 10, 3, SIZE_MAX, 4, ev, &taken), LB_OK);
    assert_int_equal(taken, 0);
    lb_ctx_free(ctx);
}

/* ---------------------------------------------------------------------- */
/* shuffling and batching                                                 */
/* ---------------------------------------------------------------------- */

static void assert_permutation(const int64_t *p, size_t n)
{
    char *seen = calloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++) {
        assert_in_range(p[i], 0, n - 1);
        assert_false(seen[p[i]]);
        seen[p[i]] = 1;
    }
    free(seen);
}

static void test_shuffle(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 7, 17, 1000};
    int64_t p[1000], q[1000];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        assert_int_equal(lb_shuffle_permutation(NULL, 7, 0, n, p), LB_OK);
        assert_permutation(p, n);
        /* the documented Fisher-Yates, recomputed here */
        for (size_t i = 0; i < n; i++) q[i] = (int64_t)i;
        for (size_t i = n; i-- > 1;) {
            double u = lb_rng_uniform_f64(7, lb_rng_stream("shuffle", 0), i);
            size_t j = (size_t)(u * (double)(i + 1));
            int64_t t = q[i];
            q[i] = q[j];
            q[j] = t;
        }
        assert_memory_equal(p, q, n * sizeof *p);
    }
    /* deterministic for (seed, epoch); differs across epochs and seeds */
    assert_int_equal(lb_shuffle_permutation(NULL, 7, 3, 1000, p), LB_OK);
    assert_int_equal(lb_shuffle_permutation(NULL, 7, 3, 1000, q), LB_OK);
    assert_memory_equal(p, q, sizeof p);
    assert_int_equal(lb_shuffle_permutation(NULL, 7, 4, 1000, q), LB_OK);
    assert_memory_not_equal(p, q, sizeof p);
    assert_int_equal(lb_shuffle_permutation(NULL, 8, 3, 1000, q), LB_OK);
    assert_memory_not_equal(p, q, sizeof p);
    assert_int_equal(lb_shuffle_permutation(NULL, 7, 0, 0, NULL), LB_OK);
    assert_int_equal(lb_shuffle_permutation(NULL, 7, 0, 3, NULL), LB_ERR_ARG);

    /* uniform over the 6 permutations of 3: 6000 epochs, each count is
     * Binomial(6000, 1/6), sd = sqrt(6000 * 1/6 * 5/6) = 28.9; allow 5 sd */
    int hist[6] = {0};
    for (uint64_t e = 0; e < 6000; e++) {
        lb_shuffle_permutation(NULL, 11, e, 3, p);
        int code = (int)(p[0] * 2 + (p[1] > p[2]));
        hist[code]++;
    }
    for (int k = 0; k < 6; k++)
        if (abs(hist[k] - 1000) > 145) fail_msg("permutation %d drawn %d times of 6000", k, hist[k]);
}

static void test_batcher(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_batcher *b;
    lb_batcher_config cfg = {.count = 10, .batch_size = 4, .seed = 5, .shuffle = true,
                             .drop_last = false};
    assert_int_equal(lb_batcher_create(ctx, &cfg, &b), LB_OK);
    assert_int_equal(lb_batcher_batches_per_epoch(b), 3);
    int64_t idx[4], perm[10];
    size_t taken;
    lb_data_cursor at;
    for (uint64_t epoch = 0; epoch < 3; epoch++) {
        assert_int_equal(lb_shuffle_permutation(NULL, 5, epoch, 10, perm), LB_OK);
        static const size_t sizes[3] = {4, 4, 2};
        size_t pos = 0;
        for (int k = 0; k < 3; k++) {
            assert_int_equal(lb_batcher_next(ctx, b, idx, &taken, &at), LB_OK);
            assert_int_equal(taken, sizes[k]);
            assert_int_equal(at.epoch, epoch);
            assert_int_equal(at.position, pos);
            assert_memory_equal(idx, perm + pos, taken * sizeof *idx);
            pos += taken;
        }
    }
    lb_batcher_free(b);

    /* drop_last: only full batches; no shuffle: identity order */
    cfg.drop_last = true;
    cfg.shuffle = false;
    assert_int_equal(lb_batcher_create(ctx, &cfg, &b), LB_OK);
    assert_int_equal(lb_batcher_batches_per_epoch(b), 2);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(lb_batcher_next(ctx, b, idx, &taken, &at), LB_OK);
        assert_int_equal(taken, 4);
        assert_int_equal(at.epoch, (uint64_t)k / 2);
        for (int i = 0; i < 4; i++) assert_int_equal(idx[i], (k % 2) * 4 + i);
    }
    lb_batcher_free(b);
    lb_batcher_free(NULL);

    /* bad configurations */
    lb_batcher_config bad = {.count = 3, .batch_size = 4, .drop_last = true};
    assert_int_equal(lb_batcher_create(ctx, &bad, &b), LB_ERR_ARG);
    bad.count = 0;
    bad.drop_last = false;
    assert_int_equal(lb_batcher_create(ctx, &bad, &b), LB_ERR_ARG);
    bad.count = 3;
    bad.batch_size = 0;
    assert_int_equal(lb_batcher_create(ctx, &bad, &b), LB_ERR_ARG);
    lb_ctx_free(ctx);
}

/* A run interrupted at any batch and resumed from the saved cursor (a
 * fresh batcher, as after loading a checkpoint) continues with exactly the
 * batches of the uninterrupted run, across epoch boundaries. */
static void test_batcher_resume(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    for (int drop = 0; drop <= 1; drop++) {
        lb_batcher_config cfg = {.count = 23, .batch_size = 5, .seed = 99, .shuffle = true,
                                 .drop_last = drop};
        enum { STEPS = 20 };
        int64_t ref[STEPS][5];
        size_t ref_n[STEPS];
        lb_data_cursor saved[STEPS + 1];
        lb_batcher *b;
        assert_int_equal(lb_batcher_create(ctx, &cfg, &b), LB_OK);
        for (int s = 0; s < STEPS; s++) {
            saved[s] = lb_batcher_cursor(b);
            assert_int_equal(lb_batcher_next(ctx, b, ref[s], &ref_n[s], NULL), LB_OK);
        }
        saved[STEPS] = lb_batcher_cursor(b);
        lb_batcher_free(b);
        for (int r = 1; r < STEPS; r++) {
            lb_batcher *c;
            assert_int_equal(lb_batcher_create(ctx, &cfg, &c), LB_OK);
            assert_int_equal(lb_batcher_seek(ctx, c, saved[r]), LB_OK);
            for (int s = r; s < STEPS; s++) {
                int64_t got[5];
                size_t n;
                assert_int_equal(lb_batcher_next(ctx, c, got, &n, NULL), LB_OK);
                assert_int_equal(n, ref_n[s]);
                assert_memory_equal(got, ref[s], n * sizeof *got);
            }
            lb_data_cursor end = lb_batcher_cursor(c);
            assert_int_equal(end.epoch, saved[STEPS].epoch);
            assert_int_equal(end.position, saved[STEPS].position);
            lb_batcher_free(c);
        }
        assert_true(saved[STEPS].epoch >= 3); /* the run crossed epochs */
    }
    lb_batcher *b;
    lb_batcher_config cfg = {.count = 4, .batch_size = 2, .seed = 1, .shuffle = true};
    assert_int_equal(lb_batcher_create(ctx, &cfg, &b), LB_OK);
    lb_data_cursor bad = {0, 5};
    assert_int_equal(lb_batcher_seek(ctx, b, bad), LB_ERR_ARG);
    lb_batcher_free(b);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_valid),
        cmocka_unit_test(test_idx_malformed),
        cmocka_unit_test(test_fashion_mnist_paths),
        cmocka_unit_test(test_fashion_mnist_real),
        cmocka_unit_test(test_rdata_valid),
        cmocka_unit_test(test_rdata_malformed),
        cmocka_unit_test(test_gutenberg_clean),
        cmocka_unit_test(test_split_sizes),
        cmocka_unit_test(test_corpus_files),
        cmocka_unit_test(test_cache_dir_and_locate),
        cmocka_unit_test(test_austen_real),
        cmocka_unit_test(test_moby_dick_real),
        cmocka_unit_test(test_entropy),
        cmocka_unit_test(test_text_windows),
        cmocka_unit_test(test_shuffle),
        cmocka_unit_test(test_batcher),
        cmocka_unit_test(test_batcher_resume),
    };
    return LB_RUN_TESTS(tests);
}
