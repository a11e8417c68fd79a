/* lowbit/status.h — status codes returned by every library function.
 *
 * Library functions never print, exit or abort on bad input: they return one of
 * these codes and, when given a context, leave a human-readable detail string in
 * it (see lb_ctx_error in context.h). The CLI turns them into messages.
 */
#ifndef LOWBIT_STATUS_H
#define LOWBIT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_status {
    LB_OK = 0,
    LB_ERR_ARG = 1,         /* invalid argument (NULL, out of range, shape mismatch) */
    LB_ERR_NOMEM = 2,       /* allocation failed or size computation overflowed */
    LB_ERR_IO = 3,          /* open/read/write/rename/fsync failed */
    LB_ERR_FORMAT = 4,      /* malformed file: bad magic, header, offsets, dtype, ... */
    LB_ERR_UNSUPPORTED = 5, /* valid request this build or CPU cannot serve */
    LB_ERR_NOT_FOUND = 6,   /* a named file, tensor, dataset or package is missing */
    LB_ERR_NUMERIC = 7,     /* NaN/Inf or other numerical failure where not allowed */
    LB_ERR_INTERNAL = 8     /* a bug: an internal invariant did not hold */
} lb_status;

/* Short constant English name of a status, e.g. "format error". Never NULL;
 * unknown values give "unknown status". */
const char *lb_status_str(lb_status status);

#ifdef __cplusplus
}
#endif
#endif
