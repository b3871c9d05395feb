/*
 * pdq.c - PDQ from pixels, in the reference's float32 operation order.
 *
 * Stages (spec/PDQ.md sections in brackets):
 *   pixels -> [2] 512 nearest-neighbour pre-shrink -> [3] float luma
 *          -> [4] Jarosz box blur, 2 passes -> [5] 64x64 point decimation
 *          -> [8] quality -> [6] 16x64 DCT -> [7] median threshold -> bits
 *          -> [10] the 8 dihedral hashes from the same DCT.
 *
 * Bit-exactness rules, each one measured to matter:
 *   - float32 everywhere in the image domain, products and sums rounded one
 *     at a time (this file is built with -ffp-contract=off, no fast-math);
 *   - every running sum walks the same samples in the same order as the
 *     reference, never recomputed, never reassociated;
 *   - the DCT matrix is built once, exactly as the reference builds it.
 *
 * Speed comes from layout only: every one-dimensional pass runs down the
 * columns of a row-major buffer, so the compiler can work on many columns
 * per instruction while each column keeps its own sequential sum.
 * Horizontal passes are column passes on transposed strips of 16 rows,
 * which stay in cache where a whole video frame would not (at 1280x720
 * this halved the time of a hash); where the CPU has AVX2, 8 rows at a
 * time are boxed with a row to a lane, transposed in registers.  The loops
 * that vectorise are also built for AVX2 and picked at start: wider
 * registers, the same operations on every lane, so the same results.
 */
#include "pdq.h"
#include "pdq_int.h"

#include <math.h>
#include <pthread.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#define BUF PDQM_PDQ_BUFFER        /* 64 */
#define DCT_N PDQM_PDQ_DCT_ROWS    /* 16 */

/* The reference's luma weights: float32 roundings of 0.299, 0.587, 0.114. */
#define LUMA_R 0.299f
#define LUMA_G 0.587f
#define LUMA_B 0.114f

/* ------------------------------------------------------------------ */
/* Constant tables, built once: the DCT matrix [6]                     */

static float dct_matrix[DCT_N][BUF];      /* D[i][j] */
static float dct_matrix_t[BUF][DCT_N];    /* D transposed, for B = T * D^T */
/* weight * (float)v for every sample value v: the same float products the
 * reference computes per pixel, looked up instead of multiplied. */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static int have_avx2;    /* the CPU runs AVX2: see row_box() */
static pthread_key_t scratch_key;    /* see scratch_get() */
static int scratch_key_ok;
static void scratch_free(void *p);

static void build_tables(void)
{
    /* The scale is rounded to float before the double multiply: skipping
     * that rounding changes 112 of the 1024 entries. */
    const double pi = 3.14159265358979323846;
    const float scale = (float)sqrt(2.0 / BUF);
    for (int i = 0; i < DCT_N; i++) {
        for (int j = 0; j < BUF; j++) {
            double arg = ((pi / 2) / BUF) * (double)(i + 1) * (double)(2 * j + 1);
            float d = (float)((double)scale * cos(arg));
            dct_matrix[i][j] = d;
            dct_matrix_t[j][i] = d;
        }
    }
#if defined(__x86_64__) && defined(__GNUC__)
    have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    /* Without a key, scratch_get() falls back to plain malloc. */
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

const float *pdqm_pdq_dct_matrix(void)
{
    pthread_once(&tables_once, build_tables);
    return &dct_matrix[0][0];
}

/* ------------------------------------------------------------------ */
/* Pre-shrink [2] and luma [3]                                          */

void pdqm_pdq_preshrink_dims(int width, int height, int *out_width,
                             int *out_height)
{
    if (width > PDQM_PDQ_PRESHRINK || height > PDQM_PDQ_PRESHRINK) {
        *out_width = PDQM_PDQ_PRESHRINK;
        *out_height = PDQM_PDQ_PRESHRINK;
    } else {
        *out_width = width;
        *out_height = height;
    }
}

int pdqm_pdq_preshrink_source(int src_len, int dst)
{
    /* The reference computes floor(dst * src / 512) in double; both
     * operands are small integers and 512 a power of two, so integer
     * division gives the same index. */
    return (int)(((int64_t)dst * src_len) / PDQM_PDQ_PRESHRINK);
}

/* The luma of one RGB pixel: each product rounded to float, then
 * (R + G) first and + B, the reference's order. */
static inline float luma_of(const uint8_t *p)
{
    return (LUMA_R * (float)p[0] + LUMA_G * (float)p[1]) + LUMA_B * (float)p[2];
}

/* One row of RGB as luma, in a loop that vectorises; built for AVX2 too,
 * picked at start. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
static void luma_row(const uint8_t *restrict p, int cols, float *restrict out)
{
    for (int x = 0; x < cols; x++)
        out[x] = luma_of(p + 3 * x);
}

/* Fill luma (rows x cols) from px, sampling source rows and columns through
 * the pre-shrink when the sizes differ.  col_src has room for cols ints. */
static void compute_luma(const pdqm_pixels *px, int rows, int cols,
                         float *luma, int *col_src)
{
    const int shrink = (rows != px->height || cols != px->width);
    const int step = px->channels;
    for (int x = 0; x < cols; x++)
        col_src[x] = step * (shrink ? pdqm_pdq_preshrink_source(px->width, x) : x);

    for (int y = 0; y < rows; y++) {
        int sy = shrink ? pdqm_pdq_preshrink_source(px->height, y) : y;
        const uint8_t *row = px->data + (size_t)sy * px->stride;
        float *out = luma + (size_t)y * cols;
        if (step == 1 && !shrink) {
            for (int x = 0; x < cols; x++)
                out[x] = (float)row[x];
        } else if (step == 1) {
            for (int x = 0; x < cols; x++)
                out[x] = (float)row[col_src[x]];
        } else if (!shrink) {
            luma_row(row, cols, out);
        } else {
            for (int x = 0; x < cols; x++)
                out[x] = luma_of(row + col_src[x]);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Jarosz box blur [4]                                                  */

int pdqm_pdq_window(int len)
{
    return (len + 127) / 128;
}

/* Box of `window` down every column of in (rows x cols) into out.
 * sum is scratch for cols floats.  Each column keeps one float running sum
 * that is added to and subtracted from in the reference's order; columns are
 * independent, so the inner loops vectorise without changing any result.
 * When `needed` is not NULL, only rows i with needed[i] are written to out
 * (the sums still walk every row: each output depends on all before it). */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
static void box_columns(const float *in, float *out, int rows, int cols,
                        int window, float *sum, const unsigned char *needed)
{
    const int half = (window + 2) / 2;  /* reaches half-1 rows down */
    const int back = window - half;     /* and back rows up, plus itself */
    int count = 0;
    int i;

    for (int j = 0; j < cols; j++)
        sum[j] = 0.0f;

    /* Prime with the first half-1 rows; no output yet. */
    for (int k = 0; k < half - 1; k++) {
        const float *enter = in + (size_t)k * cols;
        for (int j = 0; j < cols; j++)
            sum[j] += enter[j];
        count++;
    }
    /* The window grows at the top edge. */
    for (i = 0; i <= back && i < rows; i++) {
        const float *enter = in + (size_t)(i + half - 1) * cols;
        for (int j = 0; j < cols; j++)
            sum[j] += enter[j];
        count++;
        if (needed == NULL || needed[i]) {
            float *dst = out + (size_t)i * cols;
            const float n = (float)count;
            for (int j = 0; j < cols; j++)
                dst[j] = sum[j] / n;
        }
    }
    /* Full window: add the entering row, then subtract the leaving one. */
    const float full = (float)count;
    for (; i <= rows - half; i++) {
        const float *enter = in + (size_t)(i + half - 1) * cols;
        const float *leave = in + (size_t)(i - back - 1) * cols;
        if (needed == NULL || needed[i]) {
            float *dst = out + (size_t)i * cols;
            for (int j = 0; j < cols; j++) {
                sum[j] += enter[j];
                sum[j] -= leave[j];
                dst[j] = sum[j] / full;
            }
        } else {
            for (int j = 0; j < cols; j++) {
                sum[j] += enter[j];
                sum[j] -= leave[j];
            }
        }
    }
    /* The window shrinks at the bottom edge. */
    for (; i < rows; i++) {
        const float *leave = in + (size_t)(i - back - 1) * cols;
        for (int j = 0; j < cols; j++)
            sum[j] -= leave[j];
        count--;
        if (needed == NULL || needed[i]) {
            float *dst = out + (size_t)i * cols;
            const float n = (float)count;
            for (int j = 0; j < cols; j++)
                dst[j] = sum[j] / n;
        }
    }
}

void pdqm_pdq_box1d(const float *in, float *out, int n, int window)
{
    float sum;
    box_columns(in, out, n, 1, window, &sum, NULL);
}

/* out (cols x rows) = transpose of in (rows x cols).  Moves values only, so
 * the speed-up of 4x4 SSE blocks changes no result. */
static void transpose(const float *in, float *out, int rows, int cols)
{
    enum { TILE = 8 };
    for (int i0 = 0; i0 < rows; i0 += TILE) {
        int i1 = i0 + TILE < rows ? i0 + TILE : rows;
        for (int j0 = 0; j0 < cols; j0 += TILE) {
            int j1 = j0 + TILE < cols ? j0 + TILE : cols;
            int i = i0;
#ifdef __SSE2__
            for (; i + 4 <= i1; i += 4) {
                int j = j0;
                for (; j + 4 <= j1; j += 4) {
                    const float *src = in + (size_t)i * cols + j;
                    __m128 r0 = _mm_loadu_ps(src);
                    __m128 r1 = _mm_loadu_ps(src + cols);
                    __m128 r2 = _mm_loadu_ps(src + 2 * (size_t)cols);
                    __m128 r3 = _mm_loadu_ps(src + 3 * (size_t)cols);
                    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                    float *dst = out + (size_t)j * rows + i;
                    _mm_storeu_ps(dst, r0);
                    _mm_storeu_ps(dst + rows, r1);
                    _mm_storeu_ps(dst + 2 * (size_t)rows, r2);
                    _mm_storeu_ps(dst + 3 * (size_t)rows, r3);
                }
                for (; j < j1; j++)
                    for (int k = i; k < i + 4; k++)
                        out[(size_t)j * rows + k] = in[(size_t)k * cols + j];
            }
#endif
            for (; i < i1; i++)
                for (int j = j0; j < j1; j++)
                    out[(size_t)j * rows + i] = in[(size_t)i * cols + j];
        }
    }
}

/* ------------------------------------------------------------------ */
/* The row box of 8 rows at a time with AVX2, where the CPU has it      */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PDQM_ROW_BOX8 1

/* r[k] (row k of an 8x8 block) becomes column k: moves values only. */
__attribute__((target("avx2"))) static inline void transpose8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Hand over the box's output column i (one value of each of the 8 rows):
 * whole, a block of 8 columns at a time transposed back into out's rows;
 * else the needed ones into s2 (column i at s2 + 8 i). */
typedef struct box8_out {
    float *out;                  /* 8 rows, cols apart; NULL: to s2 */
    float *s2;
    const unsigned char *needed;
    int cols;
    __m256 block[8];
    int n;                       /* columns in block */
} box8_out;

__attribute__((target("avx2"))) static inline void box8_emit(box8_out *o, int i, __m256 v)
{
    if (o->out == NULL) {
        if (o->needed[i])
            _mm256_storeu_ps(o->s2 + (size_t)i * 8, v);
        return;
    }
    o->block[o->n++] = v;
    if (o->n == 8) {
        transpose8(o->block);
        for (int k = 0; k < 8; k++)
            _mm256_storeu_ps(o->out + (size_t)k * o->cols + (i - 7), o->block[k]);
        o->n = 0;
    }
}

/* Box of `window` along each of the 8 rows of in (row stride cols): the
 * sums, in order, of box_columns() on their transpose, each lane a row.
 * s1 holds 8 * cols floats. */
__attribute__((target("avx2"))) static void row_box8(const float *in, int cols, int window,
                                                     float *s1, box8_out *o)
{
    int j = 0;
    for (; j + 8 <= cols; j += 8) {
        __m256 r[8];
        for (int k = 0; k < 8; k++)
            r[k] = _mm256_loadu_ps(in + (size_t)k * cols + j);
        transpose8(r);
        for (int k = 0; k < 8; k++)
            _mm256_storeu_ps(s1 + (size_t)(j + k) * 8, r[k]);
    }
    for (; j < cols; j++)
        for (int k = 0; k < 8; k++)
            s1[(size_t)j * 8 + k] = in[(size_t)k * cols + j];

    const int half = (window + 2) / 2, back = window - half;
    __m256 sum = _mm256_setzero_ps();
    int count = 0, i;
    for (int k = 0; k < half - 1; k++, count++)
        sum = _mm256_add_ps(sum, _mm256_loadu_ps(s1 + (size_t)k * 8));
    for (i = 0; i <= back && i < cols; i++) {
        sum = _mm256_add_ps(sum, _mm256_loadu_ps(s1 + (size_t)(i + half - 1) * 8));
        count++;
        box8_emit(o, i, _mm256_div_ps(sum, _mm256_set1_ps((float)count)));
    }
    const __m256 full = _mm256_set1_ps((float)count);
    for (; i <= cols - half; i++) {
        sum = _mm256_add_ps(sum, _mm256_loadu_ps(s1 + (size_t)(i + half - 1) * 8));
        sum = _mm256_sub_ps(sum, _mm256_loadu_ps(s1 + (size_t)(i - back - 1) * 8));
        box8_emit(o, i, _mm256_div_ps(sum, full));
    }
    for (; i < cols; i++) {
        sum = _mm256_sub_ps(sum, _mm256_loadu_ps(s1 + (size_t)(i - back - 1) * 8));
        count--;
        box8_emit(o, i, _mm256_div_ps(sum, _mm256_set1_ps((float)count)));
    }
    /* The last columns, fewer than 8. */
    if (o->out != NULL && o->n > 0) {
        float tail[8][8];
        for (int c = 0; c < o->n; c++)
            _mm256_storeu_ps(tail[c], o->block[c]);
        for (int k = 0; k < 8; k++)
            for (int c = 0; c < o->n; c++)
                o->out[(size_t)k * o->cols + (cols - o->n + c)] = tail[c][k];
        o->n = 0;
    }
}

#endif

/* Rows blurred together by row_box(): a strip of them, transposed, is
 * 2 * STRIP * cols floats, which stays in cache where a whole frame would
 * not (a 1280x720 video frame is 3.7 MB a buffer). */
#define STRIP 16

/* Box of `window` along every row of in (rows x cols) into out.  Each
 * strip of rows is transposed into s1 (cols x STRIP) and boxed down its
 * columns into s2: a row's running sum walks its row left to right,
 * exactly as a column box on the whole transpose would.  With col_at NULL
 * the strip goes back whole (out: rows x cols); else only the 64 columns
 * col_at names are kept (out: rows x 64), and needed marks them. */
static void row_box(const float *in, int rows, int cols, int window, float *s1, float *s2,
                    float *sum, const unsigned char *needed, const int *col_at, float *out)
{
    int i0 = 0;
#ifdef PDQM_ROW_BOX8
    /* Eight rows at a time, transposed in registers (at 720x480 this took
     * a fifth off a frame's hash); the rows left over as below. */
    for (; have_avx2 && i0 + 8 <= rows; i0 += 8) {
        box8_out o = { .out = col_at == NULL ? out + (size_t)i0 * cols : NULL, .s2 = s2,
                       .needed = needed, .cols = cols };
        row_box8(in + (size_t)i0 * cols, cols, window, s1, &o);
        for (int r = 0; col_at != NULL && r < 8; r++) {
            float *dst = out + (size_t)(i0 + r) * BUF;
            for (int j = 0; j < BUF; j++)
                dst[j] = s2[(size_t)col_at[j] * 8 + r];
        }
    }
#endif
    for (; i0 < rows; i0 += STRIP) {
        int n = rows - i0 < STRIP ? rows - i0 : STRIP;
        transpose(in + (size_t)i0 * cols, s1, n, cols);   /* s1: cols x n */
        box_columns(s1, s2, cols, n, window, sum, needed); /* s2: cols x n */
        if (col_at == NULL) {
            transpose(s2, out + (size_t)i0 * cols, cols, n);
            continue;
        }
        for (int r = 0; r < n; r++) {
            float *dst = out + (size_t)(i0 + r) * BUF;
            for (int j = 0; j < BUF; j++)
                dst[j] = s2[(size_t)col_at[j] * n + r];
        }
    }
}

/* Blur the luma in a (rows x cols) with two passes of (row box, column box)
 * and point-sample the 64x64 buffer [5] into out.  a and b each hold
 * rows * max(cols, 64) floats and are both overwritten; strip holds
 * 2 * STRIP * max(cols, 64) floats; sum and needed hold
 * max(rows, cols, 64).
 *
 * Only 64 rows and 64 columns of the result are sampled, so the second
 * pass computes just those: its row box keeps only the sampled columns
 * and its column box runs down only those.  Every running sum still walks
 * its whole row or column, as the reference's does. */
static void blur_and_decimate(float *a, float *b, float *strip, float *sum,
                              unsigned char *needed, int rows, int cols,
                              float out[BUF * BUF])
{
    const int along_rows = pdqm_pdq_window(cols);   /* horizontal window */
    const int along_cols = pdqm_pdq_window(rows);   /* vertical window */
    const size_t half_strip = (size_t)STRIP * (size_t)(cols > BUF ? cols : BUF);
    float *s1 = strip, *s2 = strip + half_strip;
    int row_at[BUF], col_at[BUF];

    /* Cell centres: the reference computes (int)(((i + 0.5) * n) / 64) in
     * double, which is exactly floor((2i + 1) * n / 128) in integers. */
    for (int i = 0; i < BUF; i++) {
        row_at[i] = (int)(((int64_t)(2 * i + 1) * rows) / (2 * BUF));
        col_at[i] = (int)(((int64_t)(2 * i + 1) * cols) / (2 * BUF));
    }

    /* Pass 1: row box a -> b, then column box b -> a. */
    row_box(a, rows, cols, along_rows, s1, s2, sum, NULL, NULL, b);
    box_columns(b, a, rows, cols, along_cols, sum, NULL);

    /* Pass 2, row box: only the sampled columns, gathered as rows x 64 in b... */
    memset(needed, 0, (size_t)cols);
    for (int j = 0; j < BUF; j++)
        needed[col_at[j]] = 1;
    row_box(a, rows, cols, along_rows, s1, s2, sum, needed, col_at, b);

    /* ...and finish with the column box down just those. */
    memset(needed, 0, (size_t)rows);
    for (int i = 0; i < BUF; i++)
        needed[row_at[i]] = 1;
    box_columns(b, a, rows, BUF, along_cols, sum, needed);
    for (int i = 0; i < BUF; i++)
        memcpy(out + i * BUF, a + (size_t)row_at[i] * BUF, BUF * sizeof(float));
}

/* ------------------------------------------------------------------ */
/* Quality [8], DCT [6], median and bits [7], dihedrals [10]            */

static int quality_of(const float a[BUF * BUF])
{
    int sum = 0;
    for (int i = 0; i < BUF - 1; i++) {
        for (int j = 0; j < BUF; j++) {
            float u = a[i * BUF + j], v = a[(i + 1) * BUF + j];
            int d = (int)(((u - v) * 100.0f) / 255.0f);
            sum += abs(d);
        }
    }
    for (int i = 0; i < BUF; i++) {
        for (int j = 0; j < BUF - 1; j++) {
            float u = a[i * BUF + j], v = a[i * BUF + j + 1];
            int d = (int)(((u - v) * 100.0f) / 255.0f);
            sum += abs(d);
        }
    }
    int q = sum / 90;
    return q > 100 ? 100 : q;
}

/* B = D * A * D^T, each sum a float accumulator in increasing index order. */
static void dct16(const float a[BUF * BUF], float b[DCT_N * DCT_N])
{
    float t[DCT_N][BUF];
    pdqm_pdq_dct_matrix();

    for (int u = 0; u < DCT_N; u++) {
        for (int x = 0; x < BUF; x++)
            t[u][x] = 0.0f;
        for (int y = 0; y < BUF; y++) {
            const float d = dct_matrix[u][y];
            const float *row = a + y * BUF;
            for (int x = 0; x < BUF; x++)
                t[u][x] += d * row[x];
        }
    }
    for (int u = 0; u < DCT_N; u++) {
        float acc[DCT_N];
        for (int v = 0; v < DCT_N; v++)
            acc[v] = 0.0f;
        for (int x = 0; x < BUF; x++) {
            const float tx = t[u][x];
            const float *dt = dct_matrix_t[x];
            for (int v = 0; v < DCT_N; v++)
                acc[v] += tx * dt[v];
        }
        for (int v = 0; v < DCT_N; v++)
            b[u * DCT_N + v] = acc[v];
    }
}

/* The k-th smallest of v[0..n-1] (0-based), reordering v: Hoare's
 * selection.  Any correct selection gives the same value as the
 * reference's Torben median, so only the speed is ours to choose. */
static float select_kth(float *v, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                float t = v[i]; v[i] = v[j]; v[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return v[k];
}

/* Bit k is set where coefficient k is strictly above the lower median
 * (the 128th smallest), as the reference's Torben selection returns. */
static void threshold(const float b[DCT_N * DCT_N], pdqm_hash256 *h)
{
    float scratch[DCT_N * DCT_N];
    memcpy(scratch, b, sizeof scratch);
    const float median = select_kth(scratch, DCT_N * DCT_N, DCT_N * DCT_N / 2 - 1);

    memset(h, 0, sizeof *h);
    for (int k = 0; k < DCT_N * DCT_N; k++)
        if (b[k] > median)
            pdqm_hash256_set_bit(h, k);
}

/* B' for one dihedral transform: sign flips by the parity of the frequency
 * (index u is frequency u+1, whose basis changes sign under a mirror when
 * u is even) and, for the four that swap axes, a transpose. */
static void dihedral_dct(const float b[DCT_N * DCT_N], pdqm_dihedral d,
                         float out[DCT_N * DCT_N])
{
    for (int u = 0; u < DCT_N; u++) {
        for (int v = 0; v < DCT_N; v++) {
            float x = b[u * DCT_N + v];
            int keep = 1, swap = 0;
            switch (d) {
            case PDQM_DIH_ORIG:       break;
            case PDQM_DIH_ROT90:      keep = v & 1; swap = 1; break;
            case PDQM_DIH_ROT180:     keep = !((u + v) & 1); break;
            case PDQM_DIH_ROT270:     keep = u & 1; swap = 1; break;
            case PDQM_DIH_FLIPX:      keep = u & 1; break;
            case PDQM_DIH_FLIPY:      keep = v & 1; break;
            case PDQM_DIH_FLIPPLUS1:  swap = 1; break;
            case PDQM_DIH_FLIPMINUS1: keep = !((u + v) & 1); swap = 1; break;
            }
            float y = keep ? x : -x;
            if (swap)
                out[v * DCT_N + u] = y;
            else
                out[u * DCT_N + v] = y;
        }
    }
}

const char *pdqm_dihedral_name(pdqm_dihedral d)
{
    switch (d) {
    case PDQM_DIH_ORIG:       return "orig";
    case PDQM_DIH_ROT90:      return "rot90";
    case PDQM_DIH_ROT180:     return "rot180";
    case PDQM_DIH_ROT270:     return "rot270";
    case PDQM_DIH_FLIPX:      return "flipx";
    case PDQM_DIH_FLIPY:      return "flipy";
    case PDQM_DIH_FLIPPLUS1:  return "flipplus1";
    case PDQM_DIH_FLIPMINUS1: return "flipminus1";
    }
    return "?";
}

/* ------------------------------------------------------------------ */
/* Per-thread scratch                                                   */

/* Each thread keeps its working buffers between hashes: allocating and
 * faulting in 2 MiB afresh for every image costs as much as the hashing.
 * Blocks over SCRATCH_KEEP bytes (huge video frames) are not kept. */
#define SCRATCH_KEEP ((size_t)64 << 20)

typedef struct scratch {
    unsigned char *mem;
    size_t size;
} scratch;

static void scratch_free(void *p)
{
    scratch *s = p;
    if (s) {
        free(s->mem);
        free(s);
    }
}

/* A block of at least size bytes for this thread, or NULL. */
static unsigned char *scratch_get(size_t size)
{
    if (size > SCRATCH_KEEP || !scratch_key_ok)
        return malloc(size);
    scratch *s = pthread_getspecific(scratch_key);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return malloc(size);
        }
    }
    if (s->size < size) {
        free(s->mem);
        s->mem = malloc(size);
        s->size = s->mem ? size : 0;
    }
    return s->mem;
}

/* Give back a block from scratch_get(). */
static void scratch_done(unsigned char *block)
{
    scratch *s = scratch_key_ok ? pthread_getspecific(scratch_key) : NULL;
    if (s == NULL || block != s->mem)
        free(block);
}

/* ------------------------------------------------------------------ */
/* The pipeline                                                         */

/* Run stages [2]..[6]: fill luma64 and dct16.  Sets *too_small (and zeroes
 * both) for images under the minimum size. */
static pdqm_status run_stages(const pdqm_pixels *px, unsigned flags,
                              float luma64[BUF * BUF], float b[DCT_N * DCT_N],
                              int *too_small, pdqm_error *err)
{
    if (px == NULL || px->data == NULL)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "no pixels to hash");
    if (px->channels != 1 && px->channels != 3)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "PDQ takes 1 or 3 channels, not %d", px->channels);
    if (px->width < 1 || px->height < 1)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "image of %dx%d pixels has no pixels",
                              px->width, px->height);
    if (px->stride < (size_t)px->width * (size_t)px->channels)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "row stride %zu is shorter than a row", px->stride);

    int rows = px->height, cols = px->width;
    if (!(flags & PDQM_PDQ_NO_PRESHRINK))
        pdqm_pdq_preshrink_dims(px->width, px->height, &cols, &rows);
    else if ((size_t)rows * (size_t)cols > PDQM_PDQ_MAX_PIXELS_UNSHRUNK)
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                              "frame of %dx%d pixels is over the %zu-pixel limit",
                              cols, rows, PDQM_PDQ_MAX_PIXELS_UNSHRUNK);

    *too_small = (rows < PDQM_PDQ_MIN_SIZE || cols < PDQM_PDQ_MIN_SIZE);
    if (*too_small) {
        memset(luma64, 0, sizeof(float) * BUF * BUF);
        memset(b, 0, sizeof(float) * DCT_N * DCT_N);
        return PDQM_OK;
    }

    /* The blur's last stage holds rows x 64, more than rows x cols when
     * the image is narrower than 64. */
    const size_t n = (size_t)rows * (size_t)(cols > BUF ? cols : BUF);
    size_t longest = (size_t)(rows > cols ? rows : cols);
    if (longest < BUF)
        longest = BUF;
    const size_t strip_n = 2 * (size_t)STRIP * (size_t)(cols > BUF ? cols : BUF);
    const size_t bytes = (2 * n + strip_n) * sizeof(float) + longest * sizeof(float) +
                         (size_t)cols * sizeof(int) + longest;
    pdqm_pdq_dct_matrix();   /* builds the constant tables once */
    unsigned char *block = scratch_get(bytes);
    if (block == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM,
                              "out of memory hashing %dx%d pixels", cols, rows);
    float *luma = (float *)block;
    float *tmp = luma + n;
    float *strip = tmp + n;
    float *sum = strip + strip_n;
    int *col_src = (int *)(sum + longest);
    unsigned char *needed = (unsigned char *)(col_src + cols);

    compute_luma(px, rows, cols, luma, col_src);
    if (rows == BUF && cols == BUF)
        memcpy(luma64, luma, sizeof(float) * BUF * BUF);  /* the reference skips the blur */
    else
        blur_and_decimate(luma, tmp, strip, sum, needed, rows, cols, luma64);
    dct16(luma64, b);
    scratch_done(block);
    return PDQM_OK;
}

pdqm_status pdqm_pdq_intermediates(const pdqm_pixels *px, unsigned flags,
                                   float luma64[BUF * BUF],
                                   float dct16_out[DCT_N * DCT_N],
                                   pdqm_error *err)
{
    int too_small;
    return run_stages(px, flags, luma64, dct16_out, &too_small, err);
}

pdqm_status pdqm_pdq_hash(const pdqm_pixels *px, unsigned flags,
                          pdqm_pdq *out, pdqm_error *err)
{
    float luma64[BUF * BUF];
    float b[DCT_N * DCT_N];
    int too_small = 0;

    memset(out, 0, sizeof *out);
    pdqm_status st = run_stages(px, flags, luma64, b, &too_small, err);
    if (st != PDQM_OK || too_small)
        return st;

    out->quality = quality_of(luma64);
    threshold(b, &out->hash);
    if (flags & PDQM_PDQ_DIHEDRAL) {
        out->dihedral[PDQM_DIH_ORIG] = out->hash;
        for (int d = 1; d < PDQM_DIHEDRAL_COUNT; d++) {
            float bd[DCT_N * DCT_N];
            dihedral_dct(b, (pdqm_dihedral)d, bd);
            threshold(bd, &out->dihedral[d]);
        }
    }
    return PDQM_OK;
}
