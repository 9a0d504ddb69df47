/*
 * Fused CPU kernels for the wasm backend (an N-API addon built by toolkit/scripts/setup.sh; optional).
 *
 * tfjs composes LayerNorm, GELU, masked softmax attention and AdamW from 5-25 elementwise ops each, every one
 * a pass over memory plus a tensor allocation: on the 2-core bench that is ~60 % of a training step. These
 * kernels do each in one pass over views of the wasm heap (no copies), single precision with double-precision
 * row statistics, and call OpenBLAS sgemm for the attention products.
 * Every array argument is a Float32Array (Int32Array for ranges) that the caller allocated with the right size.
 */
#define NAPI_VERSION 8
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the few OpenBLAS entry points used (declared here so that no header path is needed) */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
extern void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc);
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);

/* ---------------------------------------------------------------------------------------------------------- */
/* argument parsing                                                                                             */

typedef struct {
  napi_env env;
  napi_value argv[24];
  size_t argc;
  int failed;
} Args;

static int args_init(Args *a, napi_env env, napi_callback_info info, size_t expected, const char *fn) {
  a->env = env;
  a->argc = 24;
  a->failed = 0;
  napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL);
  if (a->argc != expected) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: expected %zu arguments, got %zu", fn, expected, a->argc);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

static void *typed(Args *a, size_t i, napi_typedarray_type want, size_t *len, const char *what) {
  if (a->failed) return NULL;
  bool is;
  napi_is_typedarray(a->env, a->argv[i], &is);
  napi_typedarray_type type;
  void *data = NULL;
  if (is) napi_get_typedarray_info(a->env, a->argv[i], &type, len, &data, NULL, NULL);
  if (!is || type != want) {
    char msg[160];
    snprintf(msg, sizeof msg, "argument %zu (%s) must be a %s", i, what,
             want == napi_float32_array ? "Float32Array" : "Int32Array");
    napi_throw_type_error(a->env, NULL, msg);
    a->failed = 1;
    return NULL;
  }
  return data;
}

/* a typed array of `want` holding at least `need` values */
static void *sized(Args *a, size_t i, napi_typedarray_type want, size_t need, const char *what) {
  size_t len = 0;
  void *p = typed(a, i, want, &len, what);
  if (p && len < need) {
    char msg[200];
    snprintf(msg, sizeof msg, "%s holds %zu values, needs %zu", what, len, need);
    napi_throw_range_error(a->env, NULL, msg);
    a->failed = 1;
    return NULL;
  }
  return p;
}

static float *f32(Args *a, size_t i, size_t need, const char *what) {
  return sized(a, i, napi_float32_array, need, what);
}

static int32_t *i32(Args *a, size_t i, size_t need, const char *what) {
  return sized(a, i, napi_int32_array, need, what);
}

static double num(Args *a, size_t i) {
  double v = 0;
  if (!a->failed && napi_get_value_double(a->env, a->argv[i], &v) != napi_ok) {
    napi_throw_type_error(a->env, NULL, "expected a number");
    a->failed = 1;
  }
  return v;
}

static size_t count(Args *a, size_t i) {
  double v = num(a, i);
  return v > 0 ? (size_t)v : 0;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* threads: a fixed number of workers per call (pthread_create costs ~20 us, a kernel call ~1-10 ms)           */

/* worker threads per kernel call: the cores, at most MAX_THREADS */
#define MAX_THREADS 64
static int g_threads = 1;

typedef void (*Work)(void *ctx, size_t begin, size_t end, int worker);

typedef struct {
  Work fn;
  void *ctx;
  size_t begin, end;
  int worker;
} Part;

static void *run_part(void *p) {
  Part *t = p;
  t->fn(t->ctx, t->begin, t->end, t->worker);
  return NULL;
}

/* fn over [0, n) split in g_threads contiguous parts when the call is worth it (`work`: about the number of
   floats it touches; below MIN_PARALLEL_WORK a thread start costs more than it saves); OpenBLAS single-threaded
   meanwhile (its own threads would compete with ours, and its threading of small products costs more than it
   gains) */
#define MIN_PARALLEL_WORK (1 << 17)
static void parallel(size_t n, size_t work, Work fn, void *ctx) {
  int t = g_threads < (int)n ? g_threads : (int)n;
  if (t <= 1 || work < MIN_PARALLEL_WORK) {
    fn(ctx, 0, n, 0);
    return;
  }
  int blas = openblas_get_num_threads();
  openblas_set_num_threads(1);
  pthread_t ids[MAX_THREADS];
  Part parts[MAX_THREADS];
  for (int i = 0; i < t; i++) {
    parts[i] = (Part){fn, ctx, n * i / t, n * (i + 1) / t, i};
    if (i > 0) pthread_create(&ids[i], NULL, run_part, &parts[i]);
  }
  run_part(&parts[0]);
  for (int i = 1; i < t; i++) pthread_join(ids[i], NULL);
  openblas_set_num_threads(blas);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* LayerNorm over the last axis: y = (x - mean) * rstd * w + b, stats = (mean, rstd) per row                    */

/* sums in 8 lanes, so that the compiler vectorises them without reordering float additions itself */
#define LANES 8
static inline float lanes_total(const float *a) {
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

static inline float sum_of(const float *restrict x, size_t n) {
  float a[LANES] = {0};
  size_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) a[k] += x[i + k];
  float s = lanes_total(a);
  for (; i < n; i++) s += x[i];
  return s;
}

static inline float centered_squares(const float *restrict x, float m, size_t n) {
  float a[LANES] = {0};
  size_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) a[k] += (x[i + k] - m) * (x[i + k] - m);
  float s = lanes_total(a);
  for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
  return s;
}

/* rows per chunk of the weight / bias gradient sums: float within a chunk, double across chunks */
#define LN_CHUNK 64

typedef struct {
  const float *x, *w, *b, *dy;
  float *y, *stats, *dx;
  double *dw, *db; /* per worker totals [workers][cols] */
  float *pw, *pb;  /* per worker chunk sums [workers][cols] */
  size_t cols;
  double eps;
} LayerNormCtx;

static void ln_forward_rows(void *p, size_t r0, size_t r1, int worker) {
  (void)worker;
  const LayerNormCtx *c = p;
  const size_t C = c->cols;
  const float *restrict w = c->w, *restrict b = c->b;
  for (size_t r = r0; r < r1; r++) {
    const float *restrict x = c->x + r * C;
    float *restrict y = c->y + r * C;
    const float m = sum_of(x, C) / C;
    const float rstd = (float)(1.0 / sqrt(centered_squares(x, m, C) / C + c->eps));
    for (size_t i = 0; i < C; i++) y[i] = (x[i] - m) * rstd * w[i] + b[i];
    c->stats[2 * r] = m;
    c->stats[2 * r + 1] = rstd;
  }
}

/* layerNormForward(x, w, b, y, stats, rows, cols, eps) */
static napi_value layer_norm_forward(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 8, "layerNormForward")) return NULL;
  size_t rows = count(&a, 5), cols = count(&a, 6);
  LayerNormCtx c = {.x = f32(&a, 0, rows * cols, "x"),
                    .w = f32(&a, 1, cols, "weight"),
                    .b = f32(&a, 2, cols, "bias"),
                    .y = f32(&a, 3, rows * cols, "y"),
                    .stats = f32(&a, 4, 2 * rows, "stats"),
                    .cols = cols,
                    .eps = num(&a, 7)};
  if (a.failed) return NULL;
  parallel(rows, rows * cols, ln_forward_rows, &c);
  return NULL;
}

static void ln_backward_rows(void *p, size_t r0, size_t r1, int worker) {
  const LayerNormCtx *c = p;
  const size_t C = c->cols;
  const float *restrict w = c->w;
  double *dw = c->dw + worker * C, *db = c->db + worker * C;
  float *restrict pw = c->pw + worker * C, *restrict pb = c->pb + worker * C;
  for (size_t r = r0; r < r1; r++) {
    const float *restrict x = c->x + r * C, *restrict dy = c->dy + r * C;
    float *restrict dx = c->dx + r * C;
    const float mean = c->stats[2 * r], rstd = c->stats[2 * r + 1];
    float a1[LANES] = {0}, a2[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= C; i += LANES)
      for (int k = 0; k < LANES; k++) {
        const float g = dy[i + k] * w[i + k];
        a1[k] += g;
        a2[k] += g * (x[i + k] - mean) * rstd;
      }
    float s1 = lanes_total(a1), s2 = lanes_total(a2);
    for (; i < C; i++) {
      const float g = dy[i] * w[i];
      s1 += g;
      s2 += g * (x[i] - mean) * rstd;
    }
    const float m1 = s1 / C, m2 = s2 / C;
#pragma GCC ivdep /* the compiler cannot prove dx, pw, pb apart, though restrict says so */
    for (size_t j = 0; j < C; j++) {
      const float xh = (x[j] - mean) * rstd;
      dx[j] = rstd * (dy[j] * w[j] - m1 - xh * m2);
      pw[j] += dy[j] * xh;
      pb[j] += dy[j];
    }
    if ((r - r0) % LN_CHUNK == LN_CHUNK - 1 || r == r1 - 1)
      for (i = 0; i < C; i++) {
        dw[i] += pw[i];
        db[i] += pb[i];
        pw[i] = pb[i] = 0;
      }
  }
}

/* layerNormBackward(dy, x, w, stats, dx, dw, db, rows, cols): dx = rstd (g - mean g - x̂ mean(g x̂)), g = dy w */
static napi_value layer_norm_backward(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 9, "layerNormBackward")) return NULL;
  size_t rows = count(&a, 7), cols = count(&a, 8);
  LayerNormCtx c = {.dy = f32(&a, 0, rows * cols, "dy"),
                    .x = f32(&a, 1, rows * cols, "x"),
                    .w = f32(&a, 2, cols, "weight"),
                    .stats = f32(&a, 3, 2 * rows, "stats"),
                    .dx = f32(&a, 4, rows * cols, "dx"),
                    .cols = cols};
  float *dw = f32(&a, 5, cols, "dw"), *db = f32(&a, 6, cols, "db");
  if (a.failed) return NULL;
  c.dw = calloc(2 * g_threads * cols, sizeof(double));
  c.db = c.dw + g_threads * cols;
  c.pw = calloc(2 * g_threads * cols, sizeof(float));
  c.pb = c.pw + g_threads * cols;
  parallel(rows, rows * cols, ln_backward_rows, &c);
  for (size_t i = 0; i < cols; i++) {
    double sw = 0, sb = 0;
    for (int t = 0; t < g_threads; t++) sw += c.dw[t * cols + i], sb += c.db[t * cols + i];
    dw[i] = (float)sw;
    db[i] = (float)sb;
  }
  free(c.dw);
  free(c.pw);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* GELU, tanh approximation: gelu(x) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)                        */

/* e^x to ~2 ulp for |x| < 87 (Cody-Waite reduction, degree-6 polynomial): branch-free, so loops vectorise */
static inline __attribute__((always_inline)) float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x; /* ternaries, not fminf/fmaxf: those do not vectorise */
  x = x > 87.0f ? 87.0f : x;
  const float n = rintf(x * 1.44269504088896341f);
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static const float GELU_K = 0.7978845608028654f; /* sqrt(2/pi) */
static const float GELU_C = 0.044715f;

typedef struct {
  const float *x, *dy;
  float *y;
} GeluCtx;

static void gelu_forward_part(void *p, size_t i0, size_t i1, int worker) {
  (void)worker;
  const GeluCtx *c = p;
  const float *restrict xs = c->x;
  float *restrict y = c->y;
  for (size_t i = i0; i < i1; i++) {
    const float x = xs[i];
    const float u = GELU_K * (x + GELU_C * x * x * x);
    y[i] = x / (1.0f + exp_approx(-2.0f * u));
  }
}

/* d gelu/dx = s + x s (1 - s) 2 u', s = sigmoid(2u), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2) */
static void gelu_backward_part(void *p, size_t i0, size_t i1, int worker) {
  (void)worker;
  const GeluCtx *c = p;
  const float *restrict xs = c->x, *restrict dy = c->dy;
  float *restrict dx = c->y;
  for (size_t i = i0; i < i1; i++) {
    const float x = xs[i];
    const float u = GELU_K * (x + GELU_C * x * x * x);
    const float s = 1.0f / (1.0f + exp_approx(-2.0f * u));
    const float du = GELU_K * (1.0f + 3.0f * GELU_C * x * x);
    dx[i] = dy[i] * (s + 2.0f * x * s * (1.0f - s) * du);
  }
}

/* geluForward(x, y, n) */
static napi_value gelu_forward(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 3, "geluForward")) return NULL;
  size_t n = count(&a, 2);
  GeluCtx c = {.x = f32(&a, 0, n, "x"), .y = f32(&a, 1, n, "y")};
  if (a.failed) return NULL;
  parallel(n, n, gelu_forward_part, &c);
  return NULL;
}

/* geluBackward(dy, x, dx, n) */
static napi_value gelu_backward(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 4, "geluBackward")) return NULL;
  size_t n = count(&a, 3);
  GeluCtx c = {.dy = f32(&a, 0, n, "dy"), .x = f32(&a, 1, n, "x"), .y = f32(&a, 2, n, "dx")};
  if (a.failed) return NULL;
  parallel(n, n, gelu_backward_part, &c);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Attention softmax(q kᵀ scale | ranges) v per (sample, head). q, k, v are read in place through their strides */
/* (token-major [N, L, H, hd] or head-major [N, H, L, hd]); o and do are token-major [N, Lq, H hd]; p is the     */
/* probabilities [N, H, Lq, Lk], exactly 0 where masked. Row i sees keys [0, r[3i]) and [r[3i+1], r[3i+2]).      */

typedef struct {
  const float *q, *k, *v, *dO;
  float *o, *p, *dq, *dk, *dv;
  const int32_t *ranges;
  size_t H, Lq, Lk, hd;
  size_t sq[3], sk[3], sv[3]; /* (sN, sH, sL) */
  float scale;
  float *scratch; /* per worker Lq x Lk */
} AttnCtx;

/* softmax of one row of scores over the keys [0, r[0]) and [r[1], r[2]); 0 elsewhere */
static void softmax_ranges(float *restrict row, size_t Lk, const int32_t *r) {
  const size_t a = r[0], b = r[1] > r[0] ? r[1] : r[0], e = (size_t)r[2] > b ? (size_t)r[2] : b;
  float mx = -INFINITY;
  for (size_t j = 0; j < a; j++) mx = row[j] > mx ? row[j] : mx;
  for (size_t j = b; j < e; j++) mx = row[j] > mx ? row[j] : mx;
  for (size_t j = 0; j < a; j++) row[j] = exp_approx(row[j] - mx);
  for (size_t j = b; j < e; j++) row[j] = exp_approx(row[j] - mx);
  const float inv = 1.0f / (sum_of(row, a) + sum_of(row + b, e - b));
  for (size_t j = 0; j < a; j++) row[j] *= inv;
  for (size_t j = a; j < b; j++) row[j] = 0;
  for (size_t j = b; j < e; j++) row[j] *= inv;
  for (size_t j = e; j < Lk; j++) row[j] = 0;
}

static void attn_forward_heads(void *p, size_t b0, size_t b1, int worker) {
  (void)worker;
  AttnCtx *c = p;
  const size_t H = c->H, Lq = c->Lq, Lk = c->Lk, hd = c->hd, D = H * hd;
  for (size_t b = b0; b < b1; b++) {
    const size_t n = b / H, h = b % H;
    const float *q = c->q + n * c->sq[0] + h * c->sq[1];
    const float *k = c->k + n * c->sk[0] + h * c->sk[1];
    const float *v = c->v + n * c->sv[0] + h * c->sv[1];
    float *P = c->p + b * Lq * Lk;
    cblas_sgemm(ROW_MAJOR, NO_TRANS, TRANS, Lq, Lk, hd, c->scale, q, c->sq[2], k, c->sk[2], 0, P, Lk);
    for (size_t i = 0; i < Lq; i++) softmax_ranges(P + i * Lk, Lk, c->ranges + 3 * i);
    cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, Lq, hd, Lk, 1, P, Lk, v, c->sv[2], 0, c->o + n * Lq * D + h * hd, D);
  }
}

static int attn_shape(Args *a, size_t first, AttnCtx *c) {
  /* N, H, Lq, Lk, hd, scale, then (sN, sH, sL) of q, k, v */
  c->H = count(a, first + 1);
  c->Lq = count(a, first + 2);
  c->Lk = count(a, first + 3);
  c->hd = count(a, first + 4);
  c->scale = (float)num(a, first + 5);
  for (int t = 0; t < 3; t++) {
    size_t *s = t == 0 ? c->sq : t == 1 ? c->sk : c->sv;
    for (int d = 0; d < 3; d++) s[d] = count(a, first + 6 + 3 * t + d);
  }
  return !a->failed;
}

/* extent of a strided [N, H, L, hd] operand */
static size_t extent(size_t N, size_t H, size_t L, size_t hd, const size_t *s) {
  return (N - 1) * s[0] + (H - 1) * s[1] + (L - 1) * s[2] + hd;
}

/* attentionForward(q, k, v, ranges, o, p, N, H, Lq, Lk, hd, scale, q sN sH sL, k sN sH sL, v sN sH sL) */
static napi_value attention_forward(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 21, "attentionForward")) return NULL;
  AttnCtx c = {0};
  size_t N = count(&a, 6);
  if (!attn_shape(&a, 6, &c) || !N) return NULL;
  c.q = f32(&a, 0, extent(N, c.H, c.Lq, c.hd, c.sq), "q");
  c.k = f32(&a, 1, extent(N, c.H, c.Lk, c.hd, c.sk), "k");
  c.v = f32(&a, 2, extent(N, c.H, c.Lk, c.hd, c.sv), "v");
  c.ranges = i32(&a, 3, 3 * c.Lq, "ranges");
  c.o = f32(&a, 4, N * c.Lq * c.H * c.hd, "o");
  c.p = f32(&a, 5, N * c.H * c.Lq * c.Lk, "probabilities");
  if (a.failed) return NULL;
  parallel(N * c.H, N * c.H * c.Lq * c.Lk * c.hd / 8, attn_forward_heads, &c);
  return NULL;
}

static void attn_backward_heads(void *p, size_t b0, size_t b1, int worker) {
  AttnCtx *c = p;
  const size_t H = c->H, Lq = c->Lq, Lk = c->Lk, hd = c->hd, D = H * hd;
  float *dS = c->scratch + worker * Lq * Lk;
  for (size_t b = b0; b < b1; b++) {
    const size_t n = b / H, h = b % H;
    const size_t oq = n * c->sq[0] + h * c->sq[1], ok = n * c->sk[0] + h * c->sk[1];
    const size_t ov = n * c->sv[0] + h * c->sv[1];
    const float *P = c->p + b * Lq * Lk, *dO = c->dO + n * Lq * D + h * hd;
    cblas_sgemm(ROW_MAJOR, NO_TRANS, TRANS, Lq, Lk, hd, 1, dO, D, c->v + ov, c->sv[2], 0, dS, Lk); /* dP */
    for (size_t i = 0; i < Lq; i++) {
      const float *pr = P + i * Lk;
      float *d = dS + i * Lk;
      float dot = 0;
      for (size_t j = 0; j < Lk; j++) dot += pr[j] * d[j];
      for (size_t j = 0; j < Lk; j++) d[j] = pr[j] * (d[j] - dot);
    }
    cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, Lq, hd, Lk, c->scale, dS, Lk, c->k + ok, c->sk[2], 0, c->dq + oq,
                c->sq[2]);
    cblas_sgemm(ROW_MAJOR, TRANS, NO_TRANS, Lk, hd, Lq, c->scale, dS, Lk, c->q + oq, c->sq[2], 0, c->dk + ok,
                c->sk[2]);
    cblas_sgemm(ROW_MAJOR, TRANS, NO_TRANS, Lk, hd, Lq, 1, P, Lk, dO, D, 0, c->dv + ov, c->sv[2]);
  }
}

/* attentionBackward(q, k, v, p, dO, dq, dk, dv, N, H, Lq, Lk, hd, scale, q sN sH sL, k sN sH sL, v sN sH sL):
   dq, dk, dv take the layouts of q, k, v */
static napi_value attention_backward(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 23, "attentionBackward")) return NULL;
  AttnCtx c = {0};
  size_t N = count(&a, 8);
  if (!attn_shape(&a, 8, &c) || !N) return NULL;
  const size_t eq = extent(N, c.H, c.Lq, c.hd, c.sq), ek = extent(N, c.H, c.Lk, c.hd, c.sk);
  const size_t ev = extent(N, c.H, c.Lk, c.hd, c.sv);
  c.q = f32(&a, 0, eq, "q");
  c.k = f32(&a, 1, ek, "k");
  c.v = f32(&a, 2, ev, "v");
  c.p = f32(&a, 3, N * c.H * c.Lq * c.Lk, "probabilities");
  c.dO = f32(&a, 4, N * c.Lq * c.H * c.hd, "dO");
  c.dq = f32(&a, 5, eq, "dq");
  c.dk = f32(&a, 6, ek, "dk");
  c.dv = f32(&a, 7, ev, "dv");
  if (a.failed) return NULL;
  c.scratch = malloc(sizeof(float) * g_threads * c.Lq * c.Lk);
  parallel(N * c.H, N * c.H * c.Lq * c.Lk * c.hd / 4, attn_backward_heads, &c);
  free(c.scratch);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Optimizer: the squared norm of a gradient, and AdamW + EMA in place on one parameter                         */

/* sumSquares(g, n) -> sum of g^2 in double */
static napi_value sum_squares(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 2, "sumSquares")) return NULL;
  size_t n = count(&a, 1);
  const float *g = f32(&a, 0, n, "gradient");
  if (a.failed) return NULL;
  double s = 0;
  for (size_t i0 = 0; i0 < n; i0 += 4096) { /* float lanes within a chunk, double across chunks */
    const size_t m = n - i0 < 4096 ? n - i0 : 4096;
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= m; i += LANES)
      for (int k = 0; k < LANES; k++) acc[k] += g[i0 + i + k] * g[i0 + i + k];
    float t = lanes_total(acc);
    for (; i < m; i++) t += g[i0 + i] * g[i0 + i];
    s += t;
  }
  napi_value out;
  napi_create_double(env, s, &out);
  return out;
}

static int is_null(Args *a, size_t i) {
  napi_valuetype t;
  napi_typeof(a->env, a->argv[i], &t);
  return t == napi_null;
}

typedef struct {
  float *p, *m, *v, *ema;
  const float *g;
  float scale, lr, b1, b2, eps, wd, bc1, bc2s, d;
} AdamWCtx;

static void adamw_part(void *ctx, size_t i0, size_t i1, int worker) {
  (void)worker;
  const AdamWCtx *c = ctx;
  float *restrict p = c->p, *restrict m = c->m, *restrict v = c->v, *restrict ema = c->ema;
  const float *restrict g = c->g;
  const float b1 = c->b1, b2 = c->b2, scale = c->scale, bc2s = c->bc2s, eps = c->eps, d = c->d;
  const float decay = c->wd > 0 ? 1.0f - c->lr * c->wd : 1.0f, step = c->lr / c->bc1;
  if (!g) { /* a parameter without gradient: only its EMA moves */
    if (ema)
      for (size_t i = i0; i < i1; i++) ema[i] = ema[i] * d + p[i] * (1.0f - d);
    return;
  }
  for (size_t i = i0; i < i1; i++) {
    const float gi = g[i] * scale;
    const float mi = m[i] * b1 + gi * (1.0f - b1);
    const float vi = v[i] * b2 + gi * gi * (1.0f - b2);
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - mi / (sqrtf(vi) / bc2s + eps) * step;
  }
  if (ema)
    for (size_t i = i0; i < i1; i++) ema[i] = ema[i] * d + p[i] * (1.0f - d);
}

/* adamwUpdate(p, g | null, m, v, ema | null, n, gradScale, lr, beta1, beta2, eps, weightDecay, bc1, bc2Sqrt, emaDecay):
   torch.optim.AdamW's update order on g * gradScale (the clip coefficient), then ema = d ema + (1 - d) p;
   without a gradient only the EMA moves */
static napi_value adamw_update(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 15, "adamwUpdate")) return NULL;
  size_t n = count(&a, 5);
  AdamWCtx c = {.p = f32(&a, 0, n, "parameter")};
  c.g = is_null(&a, 1) ? NULL : f32(&a, 1, n, "gradient");
  c.m = c.g ? f32(&a, 2, n, "exp_avg") : NULL;
  c.v = c.g ? f32(&a, 3, n, "exp_avg_sq") : NULL;
  c.ema = is_null(&a, 4) ? NULL : f32(&a, 4, n, "ema");
  c.scale = (float)num(&a, 6), c.lr = (float)num(&a, 7), c.b1 = (float)num(&a, 8), c.b2 = (float)num(&a, 9);
  c.eps = (float)num(&a, 10), c.wd = (float)num(&a, 11), c.bc1 = (float)num(&a, 12);
  c.bc2s = (float)num(&a, 13), c.d = (float)num(&a, 14);
  if (a.failed) return NULL;
  parallel(n, 5 * n, adamw_part, &c);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* column sums of a [rows, cols] matrix (the bias gradient of a linear layer)                                   */

/* sumRows(x, out, rows, cols) */
static napi_value sum_rows(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 4, "sumRows")) return NULL;
  size_t rows = count(&a, 2), cols = count(&a, 3);
  const float *x = f32(&a, 0, rows * cols, "x");
  float *out = f32(&a, 1, cols, "out");
  if (a.failed) return NULL;
  memset(out, 0, cols * sizeof(float));
  for (size_t r = 0; r < rows; r++)
    for (size_t i = 0; i < cols; i++) out[i] += x[r * cols + i];
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  /* $CAUSALFUSION_THREADS overrides the core count (to check results with 1 thread, or to share a machine) */
  const char *want = getenv("CAUSALFUSION_THREADS");
  long cpus = want && atol(want) > 0 ? atol(want) : sysconf(_SC_NPROCESSORS_ONLN);
  g_threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"layerNormForward", layer_norm_forward},
             {"layerNormBackward", layer_norm_backward},
             {"geluForward", gelu_forward},
             {"geluBackward", gelu_backward},
             {"attentionForward", attention_forward},
             {"attentionBackward", attention_backward},
             {"sumSquares", sum_squares},
             {"adamwUpdate", adamw_update},
             {"sumRows", sum_rows}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}

NAPI_MODULE(cfkernels, init)
