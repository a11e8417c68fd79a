/* cpu/onednn_stub.c — the oneDNN peer's entry points when lowbit is built
 * without oneDNN (configure --with-onednn=no or libdnnl-dev missing): every
 * call returns LB_ERR_UNSUPPORTED, so callers and tests can SKIP cleanly. */
#include "config.h"
#include "lowbit/cpu.h"

bool lb_onednn_available(void) { return false; }
bool lb_onednn_int8_exact(void) { return false; }

lb_status lb_onednn_gemm_i8_create(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N,
                                   int64_t K, const int8_t *B, lb_onednn_gemm_i8 **out)
{
    (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)B;
    if (out) *out = NULL;
    return lb_error(ctx, LB_ERR_UNSUPPORTED, "lowbit was built without oneDNN");
}

lb_status lb_onednn_gemm_i8_run(lb_ctx *ctx, lb_onednn_gemm_i8 *g, const int8_t *A, int32_t *C)
{
    (void)g, (void)A, (void)C;
    return lb_error(ctx, LB_ERR_UNSUPPORTED, "lowbit was built without oneDNN");
}

const char *lb_onednn_gemm_i8_impl(const lb_onednn_gemm_i8 *g)
{
    (void)g;
    return "";
}

void lb_onednn_gemm_i8_free(lb_onednn_gemm_i8 *g) { (void)g; }

lb_status lb_gemm_i8_onednn(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                            const int8_t *A, const int8_t *B, int32_t *C)
{
    (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)A, (void)B, (void)C;
    return lb_error(ctx, LB_ERR_UNSUPPORTED, "lowbit was built without oneDNN");
}
