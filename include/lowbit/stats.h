/* lowbit/stats.h — outlier statistics of a model's activations (Bondarenko,
 * Nagel, Blankevoort 2023, "Quantizable Transformers", Tables 1-7; spec
 * outlier_free_attention_and_w8a8.md §3) and the attention "no-op"
 * behaviour behind them, collected through the model's activation taps
 * (lowbit/model.h: lb_model_set_observer).
 *
 * Per monitored tensor (a tap site of one layer) and per sequence n (one
 * example of a batch; with an attention mask only its attended tokens), the
 * sequence's activation X_n (T_n, d) is flattened to T_n·d numbers and
 *   inf_n   = max |x|                                   (lb_inf_norm_ref)
 *   kappa_n = mu4 / (s^4 + 1e-6), s with N-1, mu4 with N (lb_kurtosis_ref,
 *             LB_KURTOSIS_CODE: the authors' code, not excess kurtosis)
 * inf_n is averaged over every sequence seen, kappa_n over the sequences of
 * the first kurtosis_batches forward passes (257 for bert, 101 otherwise, as
 * the authors' validation scripts); both averages in double, in the order
 * the sequences come.
 *
 * Monitored tensors (spec §3.2; one per layer j unless said otherwise):
 *   bert (post-LN, the paper's BERT):
 *     fc2_out (a) the FFN output, ln2 (b) the block output after its final
 *     LayerNorm, res2 (c) the input of that LayerNorm (FFN output + residual).
 *   gpt, vit (pre-LN, the paper's OPT / ViT):
 *     res2 the block output (residual stream), fc2_out, ln2 (pre-FFN
 *     LayerNorm output), proj_out (attention out-projection output), ln1
 *     (pre-attention LayerNorm output), and final_ln (layer -1).
 * The summary (lb_outlier_summary) follows the authors' names:
 *   bert: max_ffn_inf_norm = max_j (a); max_ffn_io_inf_norm = max_j (c);
 *         max_ln_inf_norm = max_j (b); avg_kurtosis / max_kurtosis over the
 *         2L tensors (a), (b). The paper's "max inf. norm" is max_ffn_inf_norm.
 *   gpt/vit: max_inf_norm over all tensors; max_ffn_inf_norm over fc2_out;
 *         max_layer_inf_norm over res2 (the paper's "max inf. norm" for OPT
 *         and, by the same reading, ViT); avg_kurtosis over all 5L+1
 *         tensors; max_kurtosis over res2.
 *   headline_inf_norm / headline_kurtosis: the paper's "Max inf. norm" and
 *   "Avg. kurtosis" for the model's kind (as just said).
 *
 * Attention, per layer and head, over the valid queries of every sequence:
 *   first_mass  mean over queries of p(query -> key 0), the softmax mass on
 *               the first token ([CLS] for bert and vit, the first byte for
 *               gpt: the "no-op" sink of the paper's §3);
 *   last_mass   bert with a mask: the mean mass on the last attended token
 *               ([SEP] for WordPiece inputs); 0 otherwise;
 *   zero_rows   clipped softmax: the fraction of query rows whose clipped
 *               probabilities (ζ - γ) p + γ are all <= 0, i.e. an exact no-op
 *               (the head outputs zero); 0 for other attention kinds;
 *   gate_mean   gated attention: the mean gate value sigmoid(G(x)) over
 *               valid tokens; 0 otherwise.
 * Sums are in double in a fixed order.
 */
#ifndef LOWBIT_STATS_H
#define LOWBIT_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One monitored tensor. */
typedef struct lb_outlier_tensor {
    lb_model_tap_site site;
    int layer;                /* -1 for final_ln */
    int64_t sequences;        /* sequences seen */
    double inf_norm;          /* mean over sequences of inf_n */
    double inf_norm_max;      /* max over sequences of inf_n */
    int64_t kurtosis_sequences;
    double kurtosis;          /* mean over the first kurtosis_batches' sequences */
} lb_outlier_tensor;

/* Attention statistics of one (layer, head). */
typedef struct lb_attention_stat {
    double first_mass, last_mass, zero_rows, gate_mean;
    int64_t queries;          /* valid query rows seen */
} lb_attention_stat;

typedef struct lb_outlier_summary {
    double headline_inf_norm;   /* the paper's "Max inf. norm" for this kind */
    double headline_kurtosis;   /* the paper's "Avg. kurtosis" */
    double max_inf_norm;        /* over every monitored tensor */
    double max_ffn_inf_norm;    /* over fc2_out */
    double max_ffn_io_inf_norm; /* bert: over res2 */
    double max_ln_inf_norm;     /* bert: over ln2 */
    double max_layer_inf_norm;  /* gpt/vit: over res2 */
    double avg_kurtosis, max_kurtosis;
    double first_mass;          /* mean over layers and heads */
    int64_t sequences;
} lb_outlier_summary;

typedef struct lb_outlier_stats lb_outlier_stats;

/* Statistics for a model of config `cfg`; kurtosis_batches <= 0 means the
 * authors' default (257 bert, 101 otherwise). */
lb_status lb_outlier_stats_create(lb_ctx *ctx, const lb_model_config *cfg, int kurtosis_batches,
                                  lb_outlier_stats **out);
void lb_outlier_stats_free(lb_outlier_stats *s);

/* The observer to pass to lb_model_set_observer with user = the stats: it
 * reads the taps (never modifies them). A forward pass is one batch. */
lb_status lb_outlier_stats_observe(void *user, lb_ctx *ctx, const lb_model_tap *tap);

size_t lb_outlier_stats_count(const lb_outlier_stats *s);
const lb_outlier_tensor *lb_outlier_stats_tensor(const lb_outlier_stats *s, size_t i);
/* The attention statistic of (layer, head) (all zero out of range). */
lb_attention_stat lb_outlier_stats_attention(const lb_outlier_stats *s, int layer, int head);
void lb_outlier_stats_summary(const lb_outlier_stats *s, lb_outlier_summary *out);

/* Human-readable tables (tensors, attention per layer and head, summary). */
void lb_outlier_stats_print(const lb_outlier_stats *s, FILE *f);
/* JSON object with "summary", "tensors" and "attention" (layer-major
 * arrays of heads). */
void lb_outlier_stats_json(const lb_outlier_stats *s, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
