/* lowbit/datasets.h — the datasets lowbit trains and evaluates on, and the
 * deterministic order in which training visits them.
 *
 *   1. Fashion-MNIST (gzip IDX files of the Debian package
 *      dataset-fashion-mnist): u8 images (N, 28, 28) + u8 labels (N).
 *   2. Byte-level text corpora: bytes are tokens (vocabulary 256). The
 *      default corpus is Jane Austen's six novels, read from the R lazy-load
 *      database of the Debian package r-cran-janeaustenr; `moby-dick` is the
 *      Project Gutenberg text shipped in golang-github-colinmarc-hdfs-dev;
 *      any plain-text files can be named instead.
 *   3. Shuffling and batching as pure functions of (seed, epoch, position),
 *      so that a checkpoint saving an lb_data_cursor resumes on exactly the
 *      batches an uninterrupted run would have seen.
 *
 * doc/datasets.md describes the files, the split rules and the random-number
 * indices; they are part of the reproducibility contract and do not change
 * without changing that document.
 */
#ifndef LOWBIT_DATASETS_H
#define LOWBIT_DATASETS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Labelled image sets (IDX files) and Fashion-MNIST
 * ------------------------------------------------------------------------ */

#define LB_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define LB_FASHION_MNIST_ENV "LOWBIT_FASHION_MNIST_DIR"
#define LB_FASHION_MNIST_ROWS 28
#define LB_FASHION_MNIST_COLS 28
#define LB_FASHION_MNIST_CLASSES 10
#define LB_FASHION_MNIST_TRAIN_COUNT 60000
#define LB_FASHION_MNIST_TEST_COUNT 10000

/* Pixel mean and standard deviation of the 60000 training images, on the
 * [0, 1] scale (pixel / 255), as printed by `lowbit data fashion-mnist`
 * (lb_image_set_stats over the training split, rounded to 4 digits). */
#define LB_FASHION_MNIST_MEAN 0.2860f
#define LB_FASHION_MNIST_STD 0.3530f

typedef enum lb_data_split {
    LB_SPLIT_TRAIN = 0,
    LB_SPLIT_TEST = 1
} lb_data_split;

/* N images of rows x cols u8 pixels with a class label each. */
typedef struct lb_image_set {
    int64_t count;       /* N */
    int64_t rows, cols;  /* 28, 28 for Fashion-MNIST */
    int num_classes;     /* labels are in [0, num_classes) */
    lb_tensor *images;   /* u8 (N, rows, cols), row-major, 0 = background */
    lb_tensor *labels;   /* u8 (N) */
} lb_image_set;

/* Reads an IDX image file (magic 0x00000803: int32 N, rows, cols, then
 * N*rows*cols u8), gzip-compressed or plain (zlib reads both), into a new u8
 * tensor (N, rows, cols). Errors: LB_ERR_NOT_FOUND if the file does not exist,
 * LB_ERR_IO if it cannot be read, LB_ERR_FORMAT (the detail names the file)
 * for a bad magic, a header with N < 0 or a dimension < 1, a truncated or
 * corrupt stream or trailing bytes after the last pixel, LB_ERR_NOMEM. */
lb_status lb_idx_read_images(lb_ctx *ctx, const char *path, lb_tensor **images);

/* Reads an IDX label file (magic 0x00000801: int32 N, then N u8) into a new
 * u8 tensor (N). Every label must be < num_classes (1..256), else
 * LB_ERR_FORMAT naming the file, the index and the value. Other errors as
 * lb_idx_read_images. */
lb_status lb_idx_read_labels(lb_ctx *ctx, const char *path, int num_classes,
                             lb_tensor **labels);

/* Reads a pair of IDX files into *out (a new set); the image and label
 * counts must agree (LB_ERR_FORMAT naming both files otherwise). */
lb_status lb_image_set_load_idx(lb_ctx *ctx, const char *images_path, const char *labels_path,
                                int num_classes, lb_image_set **out);

/* The Fashion-MNIST directory to use: `dir` when non-NULL and non-empty,
 * else $LOWBIT_FASHION_MNIST_DIR when set and non-empty, else
 * LB_FASHION_MNIST_DIR. Never NULL. */
const char *lb_fashion_mnist_dir(const char *dir);

/* Loads the train (60000) or test (10000) split of Fashion-MNIST from
 * lb_fashion_mnist_dir(dir): files train-{images-idx3,labels-idx1}-ubyte.gz
 * or t10k-... Checks 28x28 images and labels 0..9 (the count is whatever the
 * files agree on). A missing directory or file gives LB_ERR_NOT_FOUND with a
 * detail naming it and saying to install the Debian package
 * dataset-fashion-mnist. */
lb_status lb_fashion_mnist_load(lb_ctx *ctx, const char *dir, lb_data_split split,
                                lb_image_set **out);

/* English name of a Fashion-MNIST class 0..9 ("T-shirt/top", "Trouser",
 * "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
 * "Ankle boot"); "?" outside 0..9. */
const char *lb_fashion_mnist_class_name(int label);

/* Frees the set and its tensors; lb_image_set_free(NULL) is a no-op. */
void lb_image_set_free(lb_image_set *set);

/* Per-class counts and pixel statistics of a set. class_counts (may be NULL)
 * receives num_classes entries. mean and std (may be NULL) are over every
 * pixel of every image on the [0, 1] scale: exact integer sums of p and p^2,
 * then mean = S1 / (255 n), std = sqrt(S2 / n - (S1 / n)^2) / 255 in double
 * (population standard deviation), so the result does not depend on the
 * order or the thread count. */
void lb_image_set_stats(const lb_image_set *set, int64_t *class_counts, double *mean,
                        double *std);

/* Gathers the images and labels of `n` examples into a normalised batch:
 *   x[b, r, c] = ((float)pixel / 255.0f - mean) / std      // x: (n, rows, cols)
 *   y[b] = label                                          // y: (n)
 * for example indices[b] (each in [0, count)). y may be NULL. mean = 0,
 * std = 1 gives the plain [0, 1] scale; LB_FASHION_MNIST_MEAN/STD give
 * zero-mean unit-variance inputs. LB_ERR_ARG for an index out of range, a
 * NULL pointer or std <= 0 (or not finite). */
lb_status lb_image_set_batch_f32(lb_ctx *ctx, const lb_image_set *set, const int64_t *indices,
                                 size_t n, float mean, float std, float *x, int32_t *y);

/* ------------------------------------------------------------------------
 * Deterministic shuffling and batching
 * ------------------------------------------------------------------------ */

/* Where a data loader stands: the epoch and the position (number of
 * examples already taken) in that epoch's order. A checkpoint saves it;
 * lb_batcher_seek restores it. */
typedef struct lb_data_cursor {
    uint64_t epoch;
    uint64_t position;
} lb_data_cursor;

/* The order of epoch `epoch`: a permutation of 0..n-1 by Fisher-Yates,
 *   perm = identity;
 *   for i = n-1 down to 1:
 *       u = lb_rng_uniform_f64(seed, lb_rng_stream("shuffle", epoch), i)
 *       j = min(floor(u * (i + 1)), i);  swap(perm[i], perm[j])
 * perm: (n). A pure function of (seed, epoch, n). LB_ERR_ARG for a NULL perm
 * with n > 0. */
lb_status lb_shuffle_permutation(lb_ctx *ctx, uint64_t seed, uint64_t epoch, size_t n,
                                 int64_t *perm);

/* Mini-batches over n examples, epoch after epoch. With shuffle, epoch e
 * visits lb_shuffle_permutation(seed, e, n); without, 0..n-1 in order. A
 * batch is the next min(batch_size, n - position) entries of the epoch's
 * order; with drop_last an epoch ends when fewer than batch_size remain
 * (so every batch is full), otherwise the last batch may be short. */
typedef struct lb_batcher lb_batcher;

typedef struct lb_batcher_config {
    size_t count;       /* n >= 1 */
    size_t batch_size;  /* >= 1 (with drop_last also <= n) */
    uint64_t seed;
    bool shuffle;
    bool drop_last;
} lb_batcher_config;

/* Creates a batcher at cursor {0, 0}. LB_ERR_ARG for a bad config. */
lb_status lb_batcher_create(lb_ctx *ctx, const lb_batcher_config *config, lb_batcher **out);
void lb_batcher_free(lb_batcher *b);

/* Writes the next batch's example indices to indices (batch_size entries of
 * room; *taken receives how many were written, >= 1) and advances the
 * cursor. When the current epoch is exhausted the cursor first moves to
 * {epoch + 1, 0}. If at is not NULL it receives the cursor of this batch
 * (epoch and position of its first example). */
lb_status lb_batcher_next(lb_ctx *ctx, lb_batcher *b, int64_t *indices, size_t *taken,
                          lb_data_cursor *at);

/* The cursor of the next batch lb_batcher_next will return (before any
 * epoch roll-over). */
lb_data_cursor lb_batcher_cursor(const lb_batcher *b);

/* Moves to a saved cursor; the following batches are those an
 * uninterrupted run would return from there. LB_ERR_ARG when position > n. */
lb_status lb_batcher_seek(lb_ctx *ctx, lb_batcher *b, lb_data_cursor cursor);

/* Number of batches lb_batcher_next returns per epoch. */
size_t lb_batcher_batches_per_epoch(const lb_batcher *b);

/* ------------------------------------------------------------------------
 * Byte-level text corpora
 * ------------------------------------------------------------------------ */

#define LB_TEXT_VOCAB 256
#define LB_TEXT_DEFAULT_VAL_FRACTION 0.1
#define LB_DATA_DIR_ENV "LOWBIT_DATA_DIR"

/* A corpus split into a training and a validation byte string (each the
 * concatenation of that split's parts, in order, without separators). */
typedef struct lb_text_corpus {
    uint8_t *train;     /* (train_len) */
    size_t train_len;
    uint8_t *val;       /* (val_len) */
    size_t val_len;
    size_t num_parts;   /* files or books the corpus was built from */
} lb_text_corpus;

/* Cleans a text in place and returns its new length (<= len):
 *   1. a leading UTF-8 byte-order mark EF BB BF is removed;
 *   2. every CR LF becomes LF (a lone CR is kept);
 *   3. if a line begins with "*** START OF" (ASCII case-insensitive), the
 *      first such line and everything before it are removed; then, if a
 *      later line (any line when there was no START line) begins with
 *      "*** END OF", the first such line and everything after it are removed,
 *      and so is the last non-blank line before it when it begins with "End
 *      of Project Gutenberg" or "End of the Project Gutenberg" (the Project
 *      Gutenberg header, closing line and licence footer);
 *   4. when a marker was removed, leading newlines are dropped and trailing
 *      newlines reduced to one.
 * Text without markers is changed only by steps 1 and 2. */
size_t lb_text_clean_gutenberg(uint8_t *text, size_t len);

/* Splits one text: the last floor(val_fraction * len) bytes are validation,
 * the rest training: *train_len = len - that. val_fraction in [0, 1). */
lb_status lb_text_split_sizes(lb_ctx *ctx, size_t len, double val_fraction, size_t *train_len,
                              size_t *val_len);

/* Reads plain-text files, cleans each one (lb_text_clean_gutenberg) and
 * splits each by lb_text_split_sizes(val_fraction); the training parts are
 * concatenated in the given order, so are the validation parts. An empty
 * file after cleaning is LB_ERR_FORMAT. LB_ERR_NOT_FOUND / LB_ERR_IO name
 * the file. */
lb_status lb_text_corpus_load_files(lb_ctx *ctx, const char *const *paths, size_t num_paths,
                                    double val_fraction, lb_text_corpus **out);

/* The cache directory of downloaded corpora:
 * ${LOWBIT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lowbit} (empty variables
 * count as unset). Writes it to buf; LB_ERR_ARG if it does not fit or HOME
 * is needed and unset. */
lb_status lb_data_cache_dir(lb_ctx *ctx, char *buf, size_t size);

/* Locates a named corpus file: `name` "default" (the Austen Rdata.rdb) or
 * "moby-dick" (mobydick.txt). Looks in the cache directory (where
 * scripts/fetch-corpus.sh extracts the package) and then in the package's
 * installed location. LB_ERR_NOT_FOUND, with a detail telling how to fetch
 * it, when neither exists; LB_ERR_ARG for an unknown name. */
lb_status lb_text_corpus_locate(lb_ctx *ctx, const char *name, char *buf, size_t size);

/* The six Austen novels, in the order they are stored and concatenated. */
#define LB_AUSTEN_BOOKS 6
/* "emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice",
 * "sensesensibility"; NULL outside 0..5. */
const char *lb_austen_book_name(int book);

/* Reads the six novels from r-cran-janeaustenr 1.0.0's Rdata.rdb: each one
 * a line vector, NA lines skipped, every line followed by '\n'. book_text[i]
 * (lb_alloc'd, the caller lb_frees) and book_len[i] receive book i. Each
 * book's byte count is checked against the known package content (4,025,029
 * bytes in all), so another package version is LB_ERR_FORMAT. */
lb_status lb_austen_read_books(lb_ctx *ctx, const char *rdb_path,
                               uint8_t *book_text[LB_AUSTEN_BOOKS],
                               size_t book_len[LB_AUSTEN_BOOKS]);

/* Loads a corpus by name:
 *   "default" (or "austen"): the six novels. With val_fraction < 0 the
 *       validation split is Persuasion, the training split the other five
 *       in storage order; with val_fraction in [0, 1) each book is split by
 *       lb_text_split_sizes instead.
 *   "moby-dick": mobydick.txt, cleaned, split with val_fraction (< 0 means
 *       LB_TEXT_DEFAULT_VAL_FRACTION).
 *   anything else: a comma-separated list of file paths, as
 *       lb_text_corpus_load_files (val_fraction < 0 means the default 0.1).
 * LB_ERR_NOT_FOUND for a missing file, with how to get it. */
lb_status lb_text_corpus_load(lb_ctx *ctx, const char *spec, double val_fraction,
                              lb_text_corpus **out);

/* Frees a corpus; lb_text_corpus_free(NULL) is a no-op. */
void lb_text_corpus_free(lb_text_corpus *corpus);

/* counts[v] = number of bytes equal to v in data; counts: (256). */
void lb_byte_histogram(const uint8_t *data, size_t len, uint64_t counts[LB_TEXT_VOCAB]);

/* Entropy in bits of the byte distribution counts/total:
 * -sum_v p_v log2 p_v over v with counts[v] > 0, summed in order v = 0..255
 * (0 for an empty histogram). On a training split this is the unigram
 * baseline of a byte-level language model, in bits per byte. */
double lb_unigram_entropy_bits(const uint64_t counts[LB_TEXT_VOCAB]);

/* Random training windows for next-byte prediction. For batch row b of step
 * `step`:
 *   u = lb_rng_uniform_f64(seed, lb_rng_stream("text-window", step), b)
 *   start = min(floor(u * (len - T)), len - T - 1)
 *   tokens[b, t] = data[start + t] for t = 0..T                 // (batch, T + 1)
 * Inputs are tokens[b, 0..T-1], targets tokens[b, 1..T]. Every start in
 * [0, len - T - 1] is possible, so the window never runs past the data.
 * starts (may be NULL) receives the start offsets, (batch). The step is the
 * whole loader state: resuming at step s reproduces the batches. LB_ERR_ARG
 * when len < T + 1, T == 0, or a pointer is NULL. */
lb_status lb_text_sample_windows(lb_ctx *ctx, const uint8_t *data, size_t len, size_t T,
                                 uint64_t seed, uint64_t step, size_t batch, int32_t *tokens,
                                 uint64_t *starts);

/* Non-overlapping evaluation windows in order: window k covers bytes
 * [k T, k T + T] (T + 1 bytes, consecutive windows share one byte), for
 * k = first .. first + batch - 1, stopping at the last full window.
 * tokens: (batch, T + 1); *taken receives the number written (0 once
 * first >= lb_text_num_eval_windows). */
lb_status lb_text_eval_windows(lb_ctx *ctx, const uint8_t *data, size_t len, size_t T,
                               size_t first, size_t batch, int32_t *tokens, size_t *taken);

/* Number of full evaluation windows: (len - 1) / T for len >= 1, else 0. */
size_t lb_text_num_eval_windows(size_t len, size_t T);

/* ------------------------------------------------------------------------
 * R serialization (the format of the Austen corpus)
 * ------------------------------------------------------------------------ */

/* Parses one object of an R lazy-load database (.rdb): blob = a 4-byte
 * big-endian uncompressed length, then a zlib stream holding R XDR
 * serialization ("X\n", version 2 or 3) of a character vector (STRSXP). The
 * non-NA elements are written, each followed by '\n', to *text (lb_alloc'd;
 * the caller lb_frees it), with their count in *num_lines. Every length is
 * bounds-checked: LB_ERR_FORMAT (with the byte offset) for a short blob, a
 * length that disagrees with the stream, a corrupt stream, another format or
 * version, another type than a character vector, an element that is not a
 * CHARSXP, a negative or too large length, or a truncated element. */
lb_status lb_rdata_read_strings(lb_ctx *ctx, const uint8_t *blob, size_t blob_len,
                                uint8_t **text, size_t *text_len, size_t *num_lines);

#ifdef __cplusplus
}
#endif
#endif
