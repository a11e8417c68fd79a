/* lowbit/npy.h — NumPy .npy files (format versions 1.0 and 2.0; 3.0 is read
 * too, it differs only in allowing a UTF-8 header).
 *
 * Supported: little-endian f4/f8/i1/i4/u1 ('<f4', '<f8', '|i1', '<i4', '|u1';
 * any byte-order mark on the one-byte types), C order, 0 to 4 dimensions.
 * fortran_order True is accepted for 0 or 1 dimensions, where the layouts
 * coincide. Everything in the header is validated (magic, version, header
 * length, dict syntax — keys 'descr', 'fortran_order', 'shape' exactly once,
 * nothing else —, dtype, order, shape, byte count against the file size,
 * overflow); bad input gives LB_ERR_FORMAT with a detail naming the file
 * and the problem. The header is parsed, never evaluated.
 *
 * Files written by lb_npy_write are byte-identical to numpy.save's.
 */
#ifndef LOWBIT_NPY_H
#define LOWBIT_NPY_H

#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads `path` into a new tensor (*out; NULL on failure). LB_ERR_IO when the
 * file cannot be opened/read, LB_ERR_FORMAT for malformed content,
 * LB_ERR_UNSUPPORTED for a valid .npy we do not handle (big-endian, Fortran
 * order, other dtypes, more than 4 dimensions). */
lb_status lb_npy_read(lb_ctx *ctx, const char *path, lb_tensor **out);

/* Writes a version 1.0 .npy (2.0 only if the header needs it), atomically:
 * a temporary file in the same directory, fsync, rename. */
lb_status lb_npy_write(lb_ctx *ctx, const char *path, const lb_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
