/* io/file_util.c — whole reads, atomic file replacement, UTF-8 checking
 * (see file_util.h). POSIX only. */
#include "config.h"
#include "file_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

lb_status lb_io_open_read(lb_ctx *ctx, const char *path, int *fd, uint64_t *size)
{
    *fd = -1;
    *size = 0;
    int f;
    do {
        f = open(path, O_RDONLY | O_CLOEXEC);
    } while (f < 0 && errno == EINTR);
    if (f < 0) return lb_error(ctx, LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(f, &sb) != 0) {
        int e = errno;
        close(f);
        return lb_error(ctx, LB_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(f);
        return lb_error(ctx, LB_ERR_IO, "%s: not a regular file%s", path,
                        S_ISDIR(sb.st_mode) ? " (a directory)" : "");
    }
    *fd = f;
    *size = (uint64_t)sb.st_size;
    return LB_OK;
}

lb_status lb_io_pread_full(lb_ctx *ctx, const char *path, int fd, void *buf, size_t n,
                           uint64_t offset)
{
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        /* Linux transfers at most 0x7ffff000 bytes per call. */
        if (chunk > ((size_t)1 << 30)) chunk = (size_t)1 << 30;
        ssize_t r = pread(fd, p + done, chunk, (off_t)(offset + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return lb_error(ctx, LB_ERR_IO, "%s: read of %zu bytes at offset %llu failed: %s", path,
                            n, (unsigned long long)offset, strerror(errno));
        }
        if (r == 0)
            return lb_error(ctx, LB_ERR_IO,
                            "%s: file ended after %llu bytes while reading %zu bytes at offset %llu "
                            "(did it change while being read?)",
                            path, (unsigned long long)(offset + done), n,
                            (unsigned long long)offset);
        done += (size_t)r;
    }
    return LB_OK;
}

/* The directory part of path ("." when there is none), malloc'd. */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, path, len);
    d[len] = '\0';
    return d;
}

lb_status lb_io_atomic_begin(lb_ctx *ctx, const char *path, lb_io_atomic *a)
{
    a->fd = -1;
    a->tmp_path = NULL;
    a->path = NULL;
    if (!path || !*path) return lb_error(ctx, LB_ERR_ARG, "empty output path");
    size_t len = strlen(path);
    if (path[len - 1] == '/') return lb_error(ctx, LB_ERR_ARG, "%s: output path is a directory", path);
    a->path = strdup(path);
    size_t cap = len + 64;
    a->tmp_path = malloc(cap);
    if (!a->path || !a->tmp_path) {
        lb_io_atomic_abort(a);
        return lb_error(ctx, LB_ERR_NOMEM, "%s: out of memory for the temporary file name", path);
    }
    /* Unique name without global state: pid, the address of `a` and the
     * clock, retried on a collision. Mode 0666 lets the umask decide, as for
     * any file the process creates (mkstemp would force 0600). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long salt = (unsigned long long)ts.tv_sec * 1000000000ull +
                              (unsigned long long)ts.tv_nsec + (unsigned long long)(uintptr_t)a;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(a->tmp_path, cap, "%s.tmp-%ld-%llx", path, (long)getpid(),
                 salt + (unsigned long long)attempt * 0x9e3779b97f4a7c15ull);
        a->fd = open(a->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (a->fd >= 0) return LB_OK;
        if (errno != EEXIST && errno != EINTR) break;
    }
    int e = errno;
    lb_status st = lb_error(ctx, LB_ERR_IO, "%s: cannot create temporary file %s: %s", path,
                            a->tmp_path, strerror(e));
    free(a->tmp_path);
    a->tmp_path = NULL; /* nothing was created: do not unlink someone else's file */
    lb_io_atomic_abort(a);
    return st;
}

lb_status lb_io_atomic_write(lb_ctx *ctx, lb_io_atomic *a, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        if (chunk > ((size_t)1 << 30)) chunk = (size_t)1 << 30;
        ssize_t w = write(a->fd, p + done, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return lb_error(ctx, LB_ERR_IO, "%s: write to %s failed: %s", a->path, a->tmp_path,
                            strerror(errno));
        }
        if (w == 0)
            return lb_error(ctx, LB_ERR_IO, "%s: write to %s made no progress", a->path,
                            a->tmp_path);
        done += (size_t)w;
    }
    return LB_OK;
}

lb_status lb_io_atomic_commit(lb_ctx *ctx, lb_io_atomic *a)
{
    lb_status st = LB_OK;
    if (fsync(a->fd) != 0) {
        st = lb_error(ctx, LB_ERR_IO, "%s: fsync of %s failed: %s", a->path, a->tmp_path,
                      strerror(errno));
        lb_io_atomic_abort(a);
        return st;
    }
    int fd = a->fd;
    a->fd = -1;
    if (close(fd) != 0) {
        st = lb_error(ctx, LB_ERR_IO, "%s: close of %s failed: %s", a->path, a->tmp_path,
                      strerror(errno));
        lb_io_atomic_abort(a);
        return st;
    }
    if (rename(a->tmp_path, a->path) != 0) {
        st = lb_error(ctx, LB_ERR_IO, "%s: cannot rename %s into place: %s", a->path, a->tmp_path,
                      strerror(errno));
        lb_io_atomic_abort(a);
        return st;
    }
    /* Make the rename itself durable. Some file systems refuse fsync on a
     * directory (EINVAL); the new contents are already in place, so this is
     * best effort. */
    char *dir = directory_of(a->path);
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    free(a->tmp_path);
    free(a->path);
    a->tmp_path = NULL;
    a->path = NULL;
    return LB_OK;
}

void lb_io_atomic_abort(lb_io_atomic *a)
{
    if (!a) return;
    if (a->fd >= 0) close(a->fd);
    a->fd = -1;
    if (a->tmp_path) unlink(a->tmp_path);
    free(a->tmp_path);
    free(a->path);
    a->tmp_path = NULL;
    a->path = NULL;
}

bool lb_io_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false; /* continuation byte, 0xc0/0xc1 overlong lead, or > 0xf4 */
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            unsigned cc = p[i + k];
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}
