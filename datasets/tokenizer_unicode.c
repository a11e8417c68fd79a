/* datasets/tokenizer_unicode.c — lookups in the generated Unicode tables
 * (datasets/unicode_tables.c) and UTF-8 coding for the WordPiece tokenizer.
 * All tables are sorted by code point, so every lookup is a binary search.
 */
#include "config.h"
#include "tokenizer_unicode.h"

/* Hangul syllables decompose algorithmically (Unicode §3.12): S = L V [T]. */
#define HANGUL_S_BASE 0xAC00u
#define HANGUL_L_BASE 0x1100u
#define HANGUL_V_BASE 0x1161u
#define HANGUL_T_BASE 0x11A7u
#define HANGUL_T_COUNT 28u
#define HANGUL_N_COUNT 588u /* V count 21 * T count 28 */
#define HANGUL_S_COUNT 11172u

uint32_t lb_unicode_flags(uint32_t cp)
{
    size_t lo = 0, hi = lb_unicode_flag_ranges_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const lb_unicode_range *r = &lb_unicode_flag_ranges[mid];
        if (cp < r->first) hi = mid;
        else if (cp > r->last) lo = mid + 1;
        else return r->flags;
    }
    return 0;
}

uint32_t lb_unicode_lower(uint32_t cp)
{
    size_t lo = 0, hi = lb_unicode_lower_runs_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const lb_unicode_case_run *r = &lb_unicode_lower_runs[mid];
        if (cp < r->first) hi = mid;
        else if (cp > r->last) lo = mid + 1;
        else {
            if ((cp - r->first) % (uint32_t)r->stride != 0) return cp;
            return (uint32_t)((int64_t)cp + r->delta);
        }
    }
    return cp;
}

int lb_unicode_decompose_stripped(uint32_t cp, uint32_t out[LB_UNI_MAX_DECOMPOSITION])
{
    if (cp >= HANGUL_S_BASE && cp < HANGUL_S_BASE + HANGUL_S_COUNT) {
        uint32_t s = cp - HANGUL_S_BASE;
        out[0] = HANGUL_L_BASE + s / HANGUL_N_COUNT;
        out[1] = HANGUL_V_BASE + (s % HANGUL_N_COUNT) / HANGUL_T_COUNT;
        if (s % HANGUL_T_COUNT == 0) return 2;
        out[2] = HANGUL_T_BASE + s % HANGUL_T_COUNT;
        return 3;
    }
    size_t lo = 0, hi = lb_unicode_decompositions_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const lb_unicode_decomposition *d = &lb_unicode_decompositions[mid];
        if (cp < d->cp) hi = mid;
        else if (cp > d->cp) lo = mid + 1;
        else {
            for (uint32_t i = 0; i < d->n; i++) out[i] = d->out[i];
            return (int)d->n;
        }
    }
    return -1;
}

bool lb_unicode_is_cjk(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

size_t lb_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp)
{
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        n = 2, v = b0 & 0x1Fu, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3, v = b0 & 0x0Fu, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4, v = b0 & 0x07u, min = 0x10000;
    } else {
        *cp = 0xFFFD; /* continuation byte, C0/C1 (overlong) or F5..FF lead */
        return 1;
    }
    if (len < n) {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0u) != 0x80u) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return n;
}

size_t lb_utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0u | (cp >> 6));
        out[1] = (uint8_t)(0x80u | (cp & 0x3Fu));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0u | (cp >> 12));
        out[1] = (uint8_t)(0x80u | ((cp >> 6) & 0x3Fu));
        out[2] = (uint8_t)(0x80u | (cp & 0x3Fu));
        return 3;
    }
    out[0] = (uint8_t)(0xF0u | (cp >> 18));
    out[1] = (uint8_t)(0x80u | ((cp >> 12) & 0x3Fu));
    out[2] = (uint8_t)(0x80u | ((cp >> 6) & 0x3Fu));
    out[3] = (uint8_t)(0x80u | (cp & 0x3Fu));
    return 4;
}

bool lb_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = lb_utf8_decode(s + i, len - i, &cp);
        /* A literal U+FFFD (EF BF BD) is valid; a decoding error is 1 byte. */
        if (cp == 0xFFFD && n == 1) return false;
        i += n;
    }
    return true;
}
