/* lowbit/safetensors.h — safetensors files (checkpoints and exported models).
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian unsigned header length N, N bytes of UTF-8 JSON, then the
 * data section. The JSON is one object:
 *     {"__metadata__": {"key": "value", ...},          (optional)
 *      "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
 *      ...}
 * Offsets are relative to the start of the data section; the tensors'
 * byte ranges must tile the data section exactly (no gap, no overlap, no
 * trailing bytes). Data is little-endian, C order.
 *
 * Reading validates everything and fails with LB_ERR_FORMAT and a detail
 * naming the file and the tensor: header length (at most 100,000,000 bytes
 * and inside the file), UTF-8 and JSON syntax (only whitespace may follow
 * the object), a known dtype, a shape of non-negative integers, the
 * element and byte counts (overflow-checked) against data_offsets, the
 * offsets against the data section and each other, duplicate tensor or
 * metadata names, no key other than dtype/shape/data_offsets in an entry,
 * and string-only metadata values. JSON numbers must be integers no larger
 * than 2^53 (the largest a JSON double holds exactly).
 *
 * Dtypes. The file may hold any byte-sized safetensors dtype (BOOL, U8, I8,
 * I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E4M3, F8_E5M2,
 * F8_E8M0); its sizes are validated and lb_safetensors_info reports it.
 * lb_safetensors_get/_get_into convert only F32, F64, I8, I32, U8 (to
 * LB_F32, LB_F64, LB_S8, LB_S32, LB_U8) and BF16 (widened exactly to
 * LB_F32); the others give LB_ERR_UNSUPPORTED. Sub-byte dtypes (F4, F6_*)
 * make the whole file LB_ERR_UNSUPPORTED; an unknown dtype is LB_ERR_FORMAT.
 * Tensors of more than LB_MAX_DIMS dimensions are validated but can only be
 * listed: info/get report LB_ERR_UNSUPPORTED for them.
 *
 * A loaded file keeps its descriptor open and reads tensor data on demand
 * (pread), so opening a multi-gigabyte checkpoint costs only its header.
 * Concurrent lb_safetensors_get calls on one lb_safetensors are safe.
 *
 * Writing is atomic: a temporary file in the same directory, fsync, rename.
 */
#ifndef LOWBIT_SAFETENSORS_H
#define LOWBIT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header accepted by the reader (the limit of the reference
 * implementation). */
#define LB_SAFETENSORS_MAX_HEADER 100000000u

/* ------------------------------------------------------------------ reading */

/* A loaded (validated) safetensors file. */
typedef struct lb_safetensors lb_safetensors;

/* Opens and validates `path`; *out is NULL on failure. LB_ERR_IO when the
 * file cannot be opened or read, LB_ERR_FORMAT for malformed content (see
 * above), LB_ERR_UNSUPPORTED for sub-byte dtypes, LB_ERR_NOMEM. */
lb_status lb_safetensors_read(lb_ctx *ctx, const char *path, lb_safetensors **out);

/* Closes the file and frees everything. NULL is a no-op. */
void lb_safetensors_free(lb_safetensors *st);

/* Number of tensors (the "__metadata__" entry is not a tensor). */
size_t lb_safetensors_count(const lb_safetensors *st);

/* Name of tensor i, 0 <= i < count, in the order the header lists them;
 * NULL when i is out of range. Valid until lb_safetensors_free. */
const char *lb_safetensors_name(const lb_safetensors *st, size_t i);

/* Describes tensor `name` without reading its data: *dtype is the file's
 * dtype string ("F32", "BF16", ...; valid until lb_safetensors_free), *ndim
 * its rank and shape[0..ndim) its dimensions (shape[ndim..) set to 1). Any
 * output pointer may be NULL. LB_ERR_NOT_FOUND when absent,
 * LB_ERR_UNSUPPORTED (with *dtype and *ndim still set) when the rank
 * exceeds LB_MAX_DIMS. */
lb_status lb_safetensors_info(lb_ctx *ctx, const lb_safetensors *st, const char *name,
                              const char **dtype, int *ndim, int64_t shape[LB_MAX_DIMS]);

/* Reads tensor `name` into a new lb_tensor (*out; NULL on failure): F32,
 * F64, I8, I32, U8 as LB_F32, LB_F64, LB_S8, LB_S32, LB_U8; BF16 widened
 * exactly to LB_F32 (the 16 bits become the high half of the float).
 * LB_ERR_NOT_FOUND when absent, LB_ERR_UNSUPPORTED for other dtypes or more
 * than LB_MAX_DIMS dimensions, LB_ERR_IO when the read fails. */
lb_status lb_safetensors_get(lb_ctx *ctx, const lb_safetensors *st, const char *name,
                             lb_tensor **out);

/* Reads tensor `name` into caller memory `dst` (numel * lb_dtype_size(dtype)
 * bytes), e.g. a model's preallocated parameter. The file's tensor must
 * have exactly `ndim` dimensions equal to shape[0..ndim) and a dtype that
 * converts to `dtype` as lb_safetensors_get does (BF16 into LB_F32 is
 * widened); otherwise LB_ERR_ARG with a detail naming the tensor, the
 * file's dtype and shape and the expected ones. LB_ERR_NOT_FOUND when
 * absent. dst may be NULL only for zero elements. */
lb_status lb_safetensors_get_into(lb_ctx *ctx, const lb_safetensors *st, const char *name,
                                  lb_dtype dtype, int ndim, const int64_t *shape, void *dst);

/* Value of metadata `key`, or NULL when absent (or st/key is NULL). Valid
 * until lb_safetensors_free. */
const char *lb_safetensors_metadata(const lb_safetensors *st, const char *key);

/* Number of metadata entries and the i-th key in file order (NULL when out
 * of range), for listing. */
size_t lb_safetensors_metadata_count(const lb_safetensors *st);
const char *lb_safetensors_metadata_key(const lb_safetensors *st, size_t i);

/* ------------------------------------------------------------------ writing */

/* Collects tensors and metadata in memory, then writes them in one go. */
typedef struct lb_safetensors_writer lb_safetensors_writer;

lb_status lb_safetensors_writer_create(lb_ctx *ctx, lb_safetensors_writer **out);

/* Frees the writer and its copies of the data. NULL is a no-op. */
void lb_safetensors_writer_free(lb_safetensors_writer *w);

/* Adds a copy of `t` (its dtype maps to F32, F64, I8, I32 or U8) under
 * `name`. Names must be non-empty UTF-8, not "__metadata__", and unique in
 * the writer (LB_ERR_ARG otherwise). The data is copied now, so `t` may
 * change or be freed afterwards. A failed add leaves the writer unchanged. */
lb_status lb_safetensors_writer_add(lb_ctx *ctx, lb_safetensors_writer *w, const char *name,
                                    const lb_tensor *t);

/* Like lb_safetensors_writer_add from raw C-order data of `dtype` and shape
 * shape[0..ndim), 0 <= ndim <= LB_MAX_DIMS. data may be NULL only for zero
 * elements. */
lb_status lb_safetensors_writer_add_raw(lb_ctx *ctx, lb_safetensors_writer *w, const char *name,
                                        lb_dtype dtype, int ndim, const int64_t *shape,
                                        const void *data);

/* Adds float data stored as BF16: each value is rounded to the nearest
 * bfloat16, ties to even (lb_f32_to_bf16), which is what PyTorch's
 * tensor.bfloat16() does; values beyond the bfloat16 range round to +-Inf.
 * Reading it back with lb_safetensors_get gives the rounded values. */
lb_status lb_safetensors_writer_add_bf16(lb_ctx *ctx, lb_safetensors_writer *w, const char *name,
                                         int ndim, const int64_t *shape, const float *data);

/* Sets metadata `key` (replacing an earlier value of the same key). Key and
 * value must be UTF-8 strings (LB_ERR_ARG otherwise). */
lb_status lb_safetensors_writer_set_metadata(lb_ctx *ctx, lb_safetensors_writer *w,
                                             const char *key, const char *value);

/* Writes the file: the header lists "__metadata__" first (when any was set)
 * then the tensors in insertion order, whose data follow contiguously in
 * the same order; the JSON is compact and padded with spaces so that the
 * header length is a multiple of 8. Atomic: the data go to a temporary file
 * in the same directory, which is fsync'd and renamed over `path`; on any
 * failure (LB_ERR_IO with path and strerror) the temporary file is removed
 * and an existing file at `path` is left untouched. The writer may be
 * saved again or extended afterwards. */
lb_status lb_safetensors_writer_save(lb_ctx *ctx, lb_safetensors_writer *w, const char *path);

/* ------------------------------------------------------------------ bfloat16 */

/* Rounds a float to bfloat16 bits, to nearest with ties to even. NaN stays
 * NaN: its sign and top 7 payload bits are kept and the quiet bit is set
 * (PyTorch returns 0x7fc0 for every NaN; the non-NaN results agree). */
uint16_t lb_f32_to_bf16(float x);

/* Widens bfloat16 bits to a float exactly. */
float lb_bf16_to_f32(uint16_t b);

#ifdef __cplusplus
}
#endif
#endif
