/* datasets/fashion_mnist.c — IDX image/label files and the Fashion-MNIST
 * dataset of the Debian package dataset-fashion-mnist.
 *
 * IDX (LeCun's MNIST format): a big-endian header, magic 0x00000803 for u8
 * images (int32 N, rows, cols) or 0x00000801 for u8 labels (int32 N), then
 * the raw bytes. Debian ships the four Fashion-MNIST files gzip-compressed;
 * zlib's gzread reads gzip and plain files alike. Everything is validated
 * before use: magic, header values, exact payload length (a truncated or
 * over-long file is a format error naming the file), labels < num_classes,
 * image and label counts equal.
 */
#include "config.h"
#include "lowbit/datasets.h"
#include "lowbit/alloc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAGIC_U8_IMAGES 0x00000803u
#define IDX_MAGIC_U8_LABELS 0x00000801u

#define FASHION_MNIST_HINT \
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"

static const char *const fashion_mnist_names[LB_FASHION_MNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

const char *lb_fashion_mnist_class_name(int label)
{
    if (label < 0 || label >= LB_FASHION_MNIST_CLASSES) return "?";
    return fashion_mnist_names[label];
}

/* An open IDX file: the gz handle and the path for error messages. */
typedef struct idx_file {
    gzFile gz;
    const char *path;
} idx_file;

static lb_status idx_open(lb_ctx *ctx, const char *path, idx_file *f)
{
    struct stat st;
    f->gz = NULL;
    f->path = path;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return lb_error(ctx, LB_ERR_NOT_FOUND, "%s: no such file", path);
        return lb_error(ctx, LB_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return lb_error(ctx, LB_ERR_IO, "%s: not a regular file", path);
    f->gz = gzopen(path, "rb");
    if (!f->gz) return lb_error(ctx, LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    return LB_OK;
}

static void idx_close(idx_file *f)
{
    if (f->gz) gzclose(f->gz);
    f->gz = NULL;
}

/* Reads exactly n bytes; a short read is a truncated file (LB_ERR_FORMAT),
 * a zlib error a corrupt one (also LB_ERR_FORMAT), an OS error LB_ERR_IO. */
static lb_status idx_read(lb_ctx *ctx, idx_file *f, void *buf, size_t n, const char *what)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        if (chunk > (size_t)1 << 30) chunk = (size_t)1 << 30;
        int got = gzread(f->gz, p + done, (unsigned)chunk);
        if (got < 0) {
            int code;
            const char *msg = gzerror(f->gz, &code);
            if (code == Z_ERRNO)
                return lb_error(ctx, LB_ERR_IO, "%s: read error: %s", f->path, strerror(errno));
            return lb_error(ctx, LB_ERR_FORMAT, "%s: corrupt gzip stream while reading %s: %s",
                            f->path, what, msg);
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    if (done < n) {
        int code;
        const char *msg = gzerror(f->gz, &code);
        return lb_error(ctx, LB_ERR_FORMAT,
                        "%s: truncated: %s needs %zu bytes, only %zu present%s%s", f->path, what,
                        n, done, code != Z_OK ? "; " : "", code != Z_OK ? msg : "");
    }
    return LB_OK;
}

/* After the payload: the file must end here. */
static lb_status idx_expect_end(lb_ctx *ctx, idx_file *f)
{
    uint8_t extra;
    int got = gzread(f->gz, &extra, 1);
    if (got > 0)
        return lb_error(ctx, LB_ERR_FORMAT, "%s: unexpected bytes after the last record",
                        f->path);
    if (got < 0) {
        int code;
        const char *msg = gzerror(f->gz, &code);
        return lb_error(ctx, LB_ERR_FORMAT, "%s: corrupt gzip stream at the end: %s", f->path,
                        msg);
    }
    return LB_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads the magic and `ndims` int32 dimensions; checks the magic. */
static lb_status idx_header(lb_ctx *ctx, idx_file *f, uint32_t magic, int ndims,
                            int64_t *dims)
{
    uint8_t head[16];
    size_t bytes = 4 * (size_t)(1 + ndims);
    lb_status st = idx_read(ctx, f, head, bytes, "the header");
    if (st != LB_OK) return st;
    uint32_t m = be32(head);
    if (m != magic)
        return lb_error(ctx, LB_ERR_FORMAT, "%s: bad IDX magic 0x%08x, expected 0x%08x (%s)",
                        f->path, m, magic, magic == IDX_MAGIC_U8_IMAGES ? "u8 images" : "u8 labels");
    for (int i = 0; i < ndims; i++) {
        uint32_t d = be32(head + 4 * (1 + i));
        if (d > INT32_MAX)
            return lb_error(ctx, LB_ERR_FORMAT, "%s: negative dimension %d in the header",
                            f->path, (int32_t)d);
        dims[i] = (int64_t)d;
    }
    return LB_OK;
}

lb_status lb_idx_read_images(lb_ctx *ctx, const char *path, lb_tensor **images)
{
    if (!path || !images) return lb_error(ctx, LB_ERR_ARG, "lb_idx_read_images: NULL argument");
    *images = NULL;
    idx_file f;
    lb_status st = idx_open(ctx, path, &f);
    if (st != LB_OK) return st;
    int64_t dims[3];
    lb_tensor *t = NULL;
    st = idx_header(ctx, &f, IDX_MAGIC_U8_IMAGES, 3, dims);
    if (st == LB_OK && (dims[1] < 1 || dims[2] < 1))
        st = lb_error(ctx, LB_ERR_FORMAT, "%s: image size %lldx%lld is empty", path,
                      (long long)dims[1], (long long)dims[2]);
    if (st == LB_OK) st = lb_tensor_create(ctx, LB_U8, 3, dims, &t);
    if (st == LB_OK) st = idx_read(ctx, &f, t->data, t->nbytes, "the pixels");
    if (st == LB_OK) st = idx_expect_end(ctx, &f);
    idx_close(&f);
    if (st != LB_OK) {
        lb_tensor_free(t);
        return st;
    }
    *images = t;
    return LB_OK;
}

lb_status lb_idx_read_labels(lb_ctx *ctx, const char *path, int num_classes, lb_tensor **labels)
{
    if (!path || !labels) return lb_error(ctx, LB_ERR_ARG, "lb_idx_read_labels: NULL argument");
    *labels = NULL;
    if (num_classes < 1 || num_classes > 256)
        return lb_error(ctx, LB_ERR_ARG, "lb_idx_read_labels: num_classes %d not in 1..256",
                        num_classes);
    idx_file f;
    lb_status st = idx_open(ctx, path, &f);
    if (st != LB_OK) return st;
    int64_t n;
    lb_tensor *t = NULL;
    st = idx_header(ctx, &f, IDX_MAGIC_U8_LABELS, 1, &n);
    if (st == LB_OK) st = lb_tensor_create(ctx, LB_U8, 1, &n, &t);
    if (st == LB_OK) st = idx_read(ctx, &f, t->data, t->nbytes, "the labels");
    if (st == LB_OK) st = idx_expect_end(ctx, &f);
    idx_close(&f);
    if (st == LB_OK) {
        const uint8_t *y = lb_tensor_u8(t);
        for (size_t i = 0; i < t->numel; i++) {
            if ((int)y[i] >= num_classes) {
                st = lb_error(ctx, LB_ERR_FORMAT, "%s: label %u of example %zu is not in 0..%d",
                              path, (unsigned)y[i], i, num_classes - 1);
                break;
            }
        }
    }
    if (st != LB_OK) {
        lb_tensor_free(t);
        return st;
    }
    *labels = t;
    return LB_OK;
}

void lb_image_set_free(lb_image_set *set)
{
    if (!set) return;
    lb_tensor_free(set->images);
    lb_tensor_free(set->labels);
    free(set);
}

lb_status lb_image_set_load_idx(lb_ctx *ctx, const char *images_path, const char *labels_path,
                                int num_classes, lb_image_set **out)
{
    if (!images_path || !labels_path || !out)
        return lb_error(ctx, LB_ERR_ARG, "lb_image_set_load_idx: NULL argument");
    *out = NULL;
    lb_image_set *set = calloc(1, sizeof *set);
    if (!set) return lb_error(ctx, LB_ERR_NOMEM, "lb_image_set_load_idx: out of memory");
    lb_status st = lb_idx_read_images(ctx, images_path, &set->images);
    if (st == LB_OK) st = lb_idx_read_labels(ctx, labels_path, num_classes, &set->labels);
    if (st == LB_OK && set->images->shape[0] != set->labels->shape[0])
        st = lb_error(ctx, LB_ERR_FORMAT, "%s has %lld images but %s has %lld labels",
                      images_path, (long long)set->images->shape[0], labels_path,
                      (long long)set->labels->shape[0]);
    if (st != LB_OK) {
        lb_image_set_free(set);
        return st;
    }
    set->count = set->images->shape[0];
    set->rows = set->images->shape[1];
    set->cols = set->images->shape[2];
    set->num_classes = num_classes;
    *out = set;
    return LB_OK;
}

const char *lb_fashion_mnist_dir(const char *dir)
{
    if (dir && *dir) return dir;
    const char *env = getenv(LB_FASHION_MNIST_ENV);
    if (env && *env) return env;
    return LB_FASHION_MNIST_DIR;
}

lb_status lb_fashion_mnist_load(lb_ctx *ctx, const char *dir, lb_data_split split,
                                lb_image_set **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "lb_fashion_mnist_load: NULL argument");
    *out = NULL;
    if (split != LB_SPLIT_TRAIN && split != LB_SPLIT_TEST)
        return lb_error(ctx, LB_ERR_ARG, "lb_fashion_mnist_load: unknown split %d", (int)split);
    dir = lb_fashion_mnist_dir(dir);
    struct stat st_dir;
    if (stat(dir, &st_dir) != 0 || !S_ISDIR(st_dir.st_mode))
        return lb_error(ctx, LB_ERR_NOT_FOUND,
                        "Fashion-MNIST directory %s not found: " FASHION_MNIST_HINT
                        ", or name another directory with --dir or " LB_FASHION_MNIST_ENV,
                        dir);
    const char *prefix = split == LB_SPLIT_TRAIN ? "train" : "t10k";
    char images_path[4096], labels_path[4096];
    int a = snprintf(images_path, sizeof images_path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    int b = snprintf(labels_path, sizeof labels_path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    if (a < 0 || b < 0 || (size_t)a >= sizeof images_path || (size_t)b >= sizeof labels_path)
        return lb_error(ctx, LB_ERR_ARG, "Fashion-MNIST directory name too long: %s", dir);
    const char *paths[2] = {images_path, labels_path};
    for (int i = 0; i < 2; i++) {
        struct stat st_file;
        if (stat(paths[i], &st_file) != 0)
            return lb_error(ctx, LB_ERR_NOT_FOUND, "%s: no such file: " FASHION_MNIST_HINT,
                            paths[i]);
    }
    lb_image_set *set;
    lb_status st = lb_image_set_load_idx(ctx, images_path, labels_path,
                                         LB_FASHION_MNIST_CLASSES, &set);
    if (st != LB_OK) return st;
    if (set->rows != LB_FASHION_MNIST_ROWS || set->cols != LB_FASHION_MNIST_COLS) {
        st = lb_error(ctx, LB_ERR_FORMAT, "%s: images are %lldx%lld, Fashion-MNIST has %dx%d",
                      images_path, (long long)set->rows, (long long)set->cols,
                      LB_FASHION_MNIST_ROWS, LB_FASHION_MNIST_COLS);
        lb_image_set_free(set);
        return st;
    }
    *out = set;
    return LB_OK;
}

void lb_image_set_stats(const lb_image_set *set, int64_t *class_counts, double *mean,
                        double *std)
{
    if (class_counts) {
        for (int c = 0; c < set->num_classes; c++) class_counts[c] = 0;
        const uint8_t *y = lb_tensor_u8(set->labels);
        for (int64_t i = 0; i < set->count; i++)
            if ((int)y[i] < set->num_classes) class_counts[y[i]]++;
    }
    if (mean || std) {
        /* Exact integer sums: 255^2 * 2^40 pixels fit in 64 bits. */
        const uint8_t *p = lb_tensor_u8(set->images);
        uint64_t s1 = 0, s2 = 0;
        size_t n = set->images->numel;
        for (size_t i = 0; i < n; i++) {
            s1 += p[i];
            s2 += (uint64_t)p[i] * p[i];
        }
        double m = n ? (double)s1 / (double)n : 0.0;
        double var = n ? (double)s2 / (double)n - m * m : 0.0;
        if (var < 0) var = 0;
        if (mean) *mean = m / 255.0;
        if (std) *std = sqrt(var) / 255.0;
    }
}

lb_status lb_image_set_batch_f32(lb_ctx *ctx, const lb_image_set *set, const int64_t *indices,
                                 size_t n, float mean, float std, float *x, int32_t *y)
{
    if (!set || (n && (!indices || !x)))
        return lb_error(ctx, LB_ERR_ARG, "lb_image_set_batch_f32: NULL argument");
    if (!(std > 0.0f) || !isfinite(std) || !isfinite(mean))
        return lb_error(ctx, LB_ERR_ARG, "lb_image_set_batch_f32: need finite mean and std > 0");
    const size_t pixels = (size_t)set->rows * (size_t)set->cols;
    const uint8_t *images = lb_tensor_u8(set->images); // (N, rows, cols)
    const uint8_t *labels = lb_tensor_u8(set->labels); // (N)
    for (size_t b = 0; b < n; b++) {
        int64_t i = indices[b];
        if (i < 0 || i >= set->count)
            return lb_error(ctx, LB_ERR_ARG,
                            "lb_image_set_batch_f32: index %lld of batch row %zu not in 0..%lld",
                            (long long)i, b, (long long)set->count - 1);
        const uint8_t *src = images + (size_t)i * pixels;
        float *dst = x + b * pixels;
        for (size_t k = 0; k < pixels; k++) dst[k] = ((float)src[k] / 255.0f - mean) / std;
        if (y) y[b] = labels[i];
    }
    return LB_OK;
}
