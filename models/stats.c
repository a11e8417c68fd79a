/* models/stats.c — outlier statistics (infinity norm, kurtosis) and the
 * attention no-op behaviour from the model's activation taps; definitions
 * in lowbit/stats.h (spec outlier_free_attention_and_w8a8.md §3.2). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/ref/outlier_metrics.h"
#include "lowbit/stats.h"

/* One (layer, head) accumulator. */
typedef struct head_acc {
    double first, last, zero, gate;
    int64_t queries, gate_tokens;
} head_acc;

typedef struct tensor_acc {
    lb_outlier_tensor t;
    double inf_sum, kurt_sum;
} tensor_acc;

struct lb_outlier_stats {
    lb_model_config cfg;
    int kurtosis_batches;
    int64_t batches;          /* forward passes seen (EMBED taps) */
    tensor_acc *tensors;      /* (n_tensors) */
    size_t n_tensors;
    int *index;               /* (LB_TAP_COUNT, n_layer + 1): tensor index of (site, layer + 1) or -1 */
    head_acc *heads;          /* (n_layer, n_head) */
    float *scratch;           /* one sequence of the widest tensor */
    int64_t scratch_len;
    double *inf, *kurt;       /* (B) per-sequence results */
    int64_t per_seq_len;
};

static int *slot(lb_outlier_stats *s, lb_model_tap_site site, int layer)
{
    return &s->index[(int)site * (s->cfg.n_layer + 1) + layer + 1];
}

static void add_tensor(lb_outlier_stats *s, lb_model_tap_site site, int layer)
{
    tensor_acc *a = &s->tensors[s->n_tensors];
    memset(a, 0, sizeof *a);
    a->t.site = site;
    a->t.layer = layer;
    *slot(s, site, layer) = (int)s->n_tensors++;
}

lb_status lb_outlier_stats_create(lb_ctx *ctx, const lb_model_config *cfg, int kurtosis_batches,
                                  lb_outlier_stats **out)
{
    if (!cfg || !out) return lb_error(ctx, LB_ERR_ARG, "stats: NULL argument");
    *out = NULL;
    const int L = cfg->n_layer, NH = cfg->n_head;
    if (L < 1 || NH < 1) return lb_error(ctx, LB_ERR_ARG, "stats: bad model config");
    lb_outlier_stats *s = lb_calloc(1, sizeof *s);
    if (!s) return lb_error(ctx, LB_ERR_NOMEM, "stats: out of memory");
    s->cfg = *cfg;
    const int bert = cfg->kind == LB_MODEL_BERT;
    s->kurtosis_batches = kurtosis_batches > 0 ? kurtosis_batches
                          : bert              ? LB_KURTOSIS_BATCHES_BERT
                                              : LB_KURTOSIS_BATCHES_OPT;
    s->tensors = lb_calloc((size_t)(5 * L + 1), sizeof *s->tensors);
    s->index = lb_alloc((size_t)(LB_TAP_COUNT * (L + 1)) * sizeof(int));
    s->heads = lb_calloc((size_t)(L * NH), sizeof *s->heads);
    if (!s->tensors || !s->index || !s->heads) {
        lb_outlier_stats_free(s);
        return lb_error(ctx, LB_ERR_NOMEM, "stats: out of memory");
    }
    for (int i = 0; i < LB_TAP_COUNT * (L + 1); i++) s->index[i] = -1;
    for (int l = 0; l < L; l++) {
        if (bert) {
            add_tensor(s, LB_TAP_FC2_OUT, l);
            add_tensor(s, LB_TAP_LN2, l);
            add_tensor(s, LB_TAP_RES2, l);
        } else {
            add_tensor(s, LB_TAP_RES2, l);
            add_tensor(s, LB_TAP_FC2_OUT, l);
            add_tensor(s, LB_TAP_LN2, l);
            add_tensor(s, LB_TAP_PROJ_OUT, l);
            add_tensor(s, LB_TAP_LN1, l);
        }
    }
    if (!bert) add_tensor(s, LB_TAP_FINAL_LN, -1);
    *out = s;
    return LB_OK;
}

void lb_outlier_stats_free(lb_outlier_stats *s)
{
    if (!s) return;
    lb_free(s->tensors);
    lb_free(s->index);
    lb_free(s->heads);
    lb_free(s->scratch);
    lb_free(s->inf);
    lb_free(s->kurt);
    lb_free(s);
}

static lb_status reserve(lb_ctx *ctx, lb_outlier_stats *s, int64_t seq_floats, int64_t B)
{
    if (seq_floats > s->scratch_len) {
        lb_free(s->scratch);
        s->scratch = lb_alloc((size_t)seq_floats * sizeof(float));
        s->scratch_len = s->scratch ? seq_floats : 0;
        if (!s->scratch) return lb_error(ctx, LB_ERR_NOMEM, "stats: out of memory");
    }
    if (B > s->per_seq_len) {
        lb_free(s->inf), lb_free(s->kurt);
        s->inf = lb_alloc((size_t)B * sizeof(double));
        s->kurt = lb_alloc((size_t)B * sizeof(double));
        s->per_seq_len = s->inf && s->kurt ? B : 0;
        if (!s->inf || !s->kurt) return lb_error(ctx, LB_ERR_NOMEM, "stats: out of memory");
    }
    return LB_OK;
}

/* Infinity norm and kurtosis of every sequence of a (B, T, W) tap. */
static lb_status tensor_tap(lb_ctx *ctx, lb_outlier_stats *s, tensor_acc *a,
                            const lb_model_tap *tap)
{
    const int64_t B = tap->shape[0], T = tap->shape[1], W = tap->shape[2];
    lb_status st = reserve(ctx, s, T * W, B);
    if (st != LB_OK) return st;
    if (!tap->mask) {
        st = lb_inf_norm_ref(ctx, B, T * W, tap->data, s->inf);
        if (st == LB_OK)
            st = lb_kurtosis_ref(ctx, B, T * W, LB_KURTOSIS_CODE, LB_KURTOSIS_EPS, tap->data,
                                 s->kurt);
        if (st != LB_OK) return st;
    } else {
        for (int64_t b = 0; b < B; b++) {
            int64_t n = 0;
            for (int64_t t = 0; t < T; t++)
                if (tap->mask[b * T + t])
                    memcpy(s->scratch + (n++) * W, tap->data + (b * T + t) * W,
                           (size_t)W * sizeof(float));
            s->inf[b] = s->kurt[b] = NAN;
            if (n == 0) continue;
            st = lb_inf_norm_ref(ctx, 1, n * W, s->scratch, &s->inf[b]);
            if (st == LB_OK && n * W >= 2)
                st = lb_kurtosis_ref(ctx, 1, n * W, LB_KURTOSIS_CODE, LB_KURTOSIS_EPS,
                                     s->scratch, &s->kurt[b]);
            if (st != LB_OK) return st;
        }
    }
    const int kurt = s->batches <= s->kurtosis_batches;
    for (int64_t b = 0; b < B; b++) {
        if (isnan(s->inf[b]) && tap->mask) continue; // an empty sequence
        a->inf_sum += s->inf[b];
        if (a->t.sequences == 0 || s->inf[b] > a->t.inf_norm_max) a->t.inf_norm_max = s->inf[b];
        a->t.sequences++;
        if (kurt && !isnan(s->kurt[b])) {
            a->kurt_sum += s->kurt[b];
            a->t.kurtosis_sequences++;
        }
    }
    a->t.inf_norm = a->t.sequences ? a->inf_sum / (double)a->t.sequences : 0;
    a->t.kurtosis = a->t.kurtosis_sequences ? a->kurt_sum / (double)a->t.kurtosis_sequences : 0;
    return LB_OK;
}

/* Attention mass on the first / last valid key, exact no-op rows. */
static void probs_tap(lb_outlier_stats *s, const lb_model_tap *tap)
{
    const int64_t B = tap->shape[0], NH = tap->shape[1], T = tap->shape[2];
    const int causal = s->cfg.kind == LB_MODEL_GPT;
    const int clipped = s->cfg.attention == LB_ATTENTION_CLIPPED;
    const float gz = s->cfg.clip_zeta - s->cfg.clip_gamma, g = s->cfg.clip_gamma;
    for (int64_t b = 0; b < B; b++) {
        int64_t last = T - 1;
        if (tap->mask)
            while (last > 0 && !tap->mask[b * T + last]) last--;
        for (int64_t h = 0; h < NH; h++) {
            head_acc *acc = &s->heads[tap->layer * s->cfg.n_head + h];
            for (int64_t q = 0; q < T; q++) {
                if (tap->mask && !tap->mask[b * T + q]) continue;
                const float *p = tap->data + ((b * NH + h) * T + q) * T; // (T) keys
                acc->first += p[0];
                if (tap->mask) acc->last += p[last];
                if (clipped) {
                    const int64_t nk = causal ? q + 1 : T;
                    float pmax = 0;
                    for (int64_t k = 0; k < nk; k++) pmax = p[k] > pmax ? p[k] : pmax;
                    acc->zero += gz * pmax + g <= 0.0f;
                }
                acc->queries++;
            }
        }
    }
}

static void gate_tap(lb_outlier_stats *s, const lb_model_tap *tap)
{
    const int64_t B = tap->shape[0], NH = tap->shape[1], T = tap->shape[2];
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++) {
            head_acc *acc = &s->heads[tap->layer * s->cfg.n_head + h];
            for (int64_t t = 0; t < T; t++) {
                if (tap->mask && !tap->mask[b * T + t]) continue;
                acc->gate += tap->data[(b * NH + h) * T + t];
                acc->gate_tokens++;
            }
        }
}

lb_status lb_outlier_stats_observe(void *user, lb_ctx *ctx, const lb_model_tap *tap)
{
    lb_outlier_stats *s = user;
    if (tap->site == LB_TAP_EMBED) s->batches++;
    if (tap->site == LB_TAP_ATTN_PROBS) {
        probs_tap(s, tap);
        return LB_OK;
    }
    if (tap->site == LB_TAP_ATTN_GATE) {
        gate_tap(s, tap);
        return LB_OK;
    }
    if (tap->layer < -1 || tap->layer >= s->cfg.n_layer || tap->ndim != 3) return LB_OK;
    const int i = *slot(s, tap->site, tap->layer);
    if (i < 0) return LB_OK;
    return tensor_tap(ctx, s, &s->tensors[i], tap);
}

size_t lb_outlier_stats_count(const lb_outlier_stats *s) { return s->n_tensors; }

const lb_outlier_tensor *lb_outlier_stats_tensor(const lb_outlier_stats *s, size_t i)
{
    return i < s->n_tensors ? &s->tensors[i].t : NULL;
}

lb_attention_stat lb_outlier_stats_attention(const lb_outlier_stats *s, int layer, int head)
{
    lb_attention_stat r = {0, 0, 0, 0, 0};
    if (layer < 0 || layer >= s->cfg.n_layer || head < 0 || head >= s->cfg.n_head) return r;
    const head_acc *a = &s->heads[layer * s->cfg.n_head + head];
    const double q = a->queries ? (double)a->queries : 1;
    r.first_mass = a->first / q;
    r.last_mass = a->last / q;
    r.zero_rows = a->zero / q;
    r.gate_mean = a->gate_tokens ? a->gate / (double)a->gate_tokens : 0;
    r.queries = a->queries;
    return r;
}

void lb_outlier_stats_summary(const lb_outlier_stats *s, lb_outlier_summary *out)
{
    memset(out, 0, sizeof *out);
    const int bert = s->cfg.kind == LB_MODEL_BERT;
    double ksum = 0;
    int kn = 0;
    for (size_t i = 0; i < s->n_tensors; i++) {
        const lb_outlier_tensor *t = lb_outlier_stats_tensor(s, i);
        out->sequences = t->sequences > out->sequences ? t->sequences : out->sequences;
        out->max_inf_norm = fmax(out->max_inf_norm, t->inf_norm);
        if (t->site == LB_TAP_FC2_OUT) out->max_ffn_inf_norm = fmax(out->max_ffn_inf_norm, t->inf_norm);
        if (bert && t->site == LB_TAP_RES2)
            out->max_ffn_io_inf_norm = fmax(out->max_ffn_io_inf_norm, t->inf_norm);
        if (bert && t->site == LB_TAP_LN2)
            out->max_ln_inf_norm = fmax(out->max_ln_inf_norm, t->inf_norm);
        if (!bert && t->site == LB_TAP_RES2)
            out->max_layer_inf_norm = fmax(out->max_layer_inf_norm, t->inf_norm);
        // kurtosis: bert over (a) fc2_out and (b) ln2; pre-LN over all, max over res2
        const int in_avg = !bert || t->site == LB_TAP_FC2_OUT || t->site == LB_TAP_LN2;
        if (in_avg) {
            ksum += t->kurtosis;
            kn++;
        }
        if (bert ? in_avg : t->site == LB_TAP_RES2)
            out->max_kurtosis = fmax(out->max_kurtosis, t->kurtosis);
    }
    out->avg_kurtosis = kn ? ksum / kn : 0;
    out->headline_inf_norm = bert ? out->max_ffn_inf_norm : out->max_layer_inf_norm;
    out->headline_kurtosis = out->avg_kurtosis;
    double fm = 0;
    for (int l = 0; l < s->cfg.n_layer; l++)
        for (int h = 0; h < s->cfg.n_head; h++) fm += lb_outlier_stats_attention(s, l, h).first_mass;
    out->first_mass = fm / (double)(s->cfg.n_layer * s->cfg.n_head);
}

void lb_outlier_stats_print(const lb_outlier_stats *s, FILE *f)
{
    lb_outlier_summary sum;
    lb_outlier_stats_summary(s, &sum);
    fprintf(f, "monitored tensors (per sequence: inf norm = max|x|, kurtosis = mu4/(s^4+1e-6); "
               "means over %lld sequences)\n", (long long)sum.sequences);
    fprintf(f, "  %-6s %-9s %12s %12s %12s\n", "layer", "tensor", "inf norm", "max inf", "kurtosis");
    for (size_t i = 0; i < s->n_tensors; i++) {
        const lb_outlier_tensor *t = lb_outlier_stats_tensor(s, i);
        char layer[16];
        snprintf(layer, sizeof layer, "%d", t->layer);
        fprintf(f, "  %-6s %-9s %12.3f %12.3f %12.2f\n", t->layer < 0 ? "-" : layer,
                lb_model_tap_name(t->site), t->inf_norm, t->inf_norm_max, t->kurtosis);
    }
    const int clipped = s->cfg.attention == LB_ATTENTION_CLIPPED;
    const int gated = s->cfg.attention == LB_ATTENTION_GATED;
    const int bert_mask = s->cfg.kind == LB_MODEL_BERT;
    fprintf(f, "attention mass on the first token, %% per head (mean)%s%s\n",
            clipped ? "; exact no-op rows %" : "", gated ? "; mean gate" : "");
    for (int l = 0; l < s->cfg.n_layer; l++) {
        fprintf(f, "  layer %-2d", l);
        double m = 0, z = 0, g = 0, last = 0;
        for (int h = 0; h < s->cfg.n_head; h++) {
            const lb_attention_stat at = lb_outlier_stats_attention(s, l, h), *a = &at;
            fprintf(f, " %5.1f", 100 * a->first_mass);
            m += a->first_mass, z += a->zero_rows, g += a->gate_mean, last += a->last_mass;
        }
        const double nh = s->cfg.n_head;
        fprintf(f, "  (mean %5.1f", 100 * m / nh);
        if (bert_mask) fprintf(f, ", last token %5.1f", 100 * last / nh);
        if (clipped) fprintf(f, ", no-op rows %5.1f", 100 * z / nh);
        if (gated) fprintf(f, ", gate %.3f", g / nh);
        fprintf(f, ")\n");
    }
    fprintf(f, "summary (%s)\n", lb_model_kind_name(s->cfg.kind));
    fprintf(f, "  max inf norm (paper)   %.3f\n", sum.headline_inf_norm);
    fprintf(f, "  avg kurtosis (paper)   %.2f\n", sum.headline_kurtosis);
    fprintf(f, "  max kurtosis           %.2f\n", sum.max_kurtosis);
    fprintf(f, "  max inf norm (all)     %.3f\n", sum.max_inf_norm);
    fprintf(f, "  max FFN-output inf     %.3f\n", sum.max_ffn_inf_norm);
    if (s->cfg.kind == LB_MODEL_BERT) {
        fprintf(f, "  max FFN i+o inf norm   %.3f\n", sum.max_ffn_io_inf_norm);
        fprintf(f, "  max LN(FFN i+o) inf    %.3f\n", sum.max_ln_inf_norm);
    } else {
        fprintf(f, "  max layer inf norm     %.3f\n", sum.max_layer_inf_norm);
    }
    fprintf(f, "  first-token mass       %.2f%%\n", 100 * sum.first_mass);
}

void lb_outlier_stats_json(const lb_outlier_stats *s, FILE *f)
{
    lb_outlier_summary sum;
    lb_outlier_stats_summary(s, &sum);
    fprintf(f, "{\"model\":\"%s\",\"attention\":\"%s\",\"layers\":%d,\"heads\":%d,",
            lb_model_kind_name(s->cfg.kind), lb_attention_kind_name(s->cfg.attention),
            s->cfg.n_layer, s->cfg.n_head);
    fprintf(f, "\"summary\":{\"sequences\":%lld,\"max_inf_norm_paper\":%.9g,"
               "\"avg_kurtosis_paper\":%.9g,\"max_kurtosis\":%.9g,\"max_inf_norm\":%.9g,"
               "\"max_ffn_inf_norm\":%.9g,\"max_ffn_io_inf_norm\":%.9g,\"max_ln_inf_norm\":%.9g,"
               "\"max_layer_inf_norm\":%.9g,\"first_token_mass\":%.9g},",
            (long long)sum.sequences, sum.headline_inf_norm, sum.headline_kurtosis,
            sum.max_kurtosis, sum.max_inf_norm, sum.max_ffn_inf_norm, sum.max_ffn_io_inf_norm,
            sum.max_ln_inf_norm, sum.max_layer_inf_norm, sum.first_mass);
    fprintf(f, "\"tensors\":[");
    for (size_t i = 0; i < s->n_tensors; i++) {
        const lb_outlier_tensor *t = lb_outlier_stats_tensor(s, i);
        fprintf(f, "%s{\"layer\":%d,\"tensor\":\"%s\",\"sequences\":%lld,\"inf_norm\":%.9g,"
                   "\"inf_norm_max\":%.9g,\"kurtosis\":%.9g,\"kurtosis_sequences\":%lld}",
                i ? "," : "", t->layer, lb_model_tap_name(t->site), (long long)t->sequences,
                t->inf_norm, t->inf_norm_max, t->kurtosis, (long long)t->kurtosis_sequences);
    }
    fprintf(f, "],\"attention\":[");
    for (int l = 0; l < s->cfg.n_layer; l++) {
        fprintf(f, "%s[", l ? "," : "");
        for (int h = 0; h < s->cfg.n_head; h++) {
            const lb_attention_stat at = lb_outlier_stats_attention(s, l, h), *a = &at;
            fprintf(f, "%s{\"first_mass\":%.9g,\"last_mass\":%.9g,\"zero_rows\":%.9g,"
                       "\"gate_mean\":%.9g,\"queries\":%lld}",
                    h ? "," : "", a->first_mass, a->last_mass, a->zero_rows, a->gate_mean,
                    (long long)a->queries);
        }
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
}
