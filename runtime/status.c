/* runtime/status.c — names of status codes. */
#include "config.h"
#include "lowbit/status.h"

const char *lb_status_str(lb_status status)
{
    switch (status) {
    case LB_OK: return "ok";
    case LB_ERR_ARG: return "invalid argument";
    case LB_ERR_NOMEM: return "out of memory";
    case LB_ERR_IO: return "I/O error";
    case LB_ERR_FORMAT: return "format error";
    case LB_ERR_UNSUPPORTED: return "unsupported";
    case LB_ERR_NOT_FOUND: return "not found";
    case LB_ERR_NUMERIC: return "numerical error";
    case LB_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
