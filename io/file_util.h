/* io/file_util.h — internal helpers shared by the file formats in io/:
 * whole reads at an offset, atomic replacement of a file, UTF-8 checking.
 * Not installed; every function reports errors through lb_error with the
 * path and strerror in the detail.
 */
#ifndef LOWBIT_IO_FILE_UTIL_H
#define LOWBIT_IO_FILE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lowbit/context.h"
#include "lowbit/status.h"

/* Opens `path` for reading and returns its descriptor and size. Fails with
 * LB_ERR_IO (path + strerror) when it cannot be opened or is not a regular
 * file (a directory, FIFO or device has no size we can validate against). */
lb_status lb_io_open_read(lb_ctx *ctx, const char *path, int *fd, uint64_t *size);

/* Reads exactly n bytes at `offset` (pread, retried on EINTR and short
 * reads). A read error is LB_ERR_IO; reaching the end of the file early
 * (the file shrank after it was opened) is LB_ERR_IO as well. */
lb_status lb_io_pread_full(lb_ctx *ctx, const char *path, int fd, void *buf, size_t n,
                           uint64_t offset);

/* A file being written under a temporary name next to its final path. */
typedef struct lb_io_atomic {
    int fd;          /* -1 once closed */
    char *tmp_path;  /* "<path>.tmp-<pid>-<n>", malloc'd */
    char *path;      /* final path, malloc'd */
} lb_io_atomic;

/* Creates the temporary file (O_EXCL, mode 0666 minus umask) in the
 * directory of `path`. On failure nothing is left on disk. */
lb_status lb_io_atomic_begin(lb_ctx *ctx, const char *path, lb_io_atomic *a);

/* Writes all n bytes (retrying short writes and EINTR). On failure the
 * caller must still call lb_io_atomic_abort. */
lb_status lb_io_atomic_write(lb_ctx *ctx, lb_io_atomic *a, const void *buf, size_t n);

/* fsync, close, rename over `path`, then fsync the directory (best effort:
 * the rename has already made the new contents visible). On any failure
 * before the rename the temporary file is removed and `path` is untouched.
 * Always releases `a`. */
lb_status lb_io_atomic_commit(lb_ctx *ctx, lb_io_atomic *a);

/* Closes and removes the temporary file and releases `a`; safe to call on a
 * zeroed or already released `a`. */
void lb_io_atomic_abort(lb_io_atomic *a);

/* True when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF). */
bool lb_io_utf8_valid(const char *s, size_t n);

#endif
