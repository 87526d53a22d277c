// Fused CPU recurrence for the LSTM variants of lstmkit.core.cells, the GRU and the Elman RNN (forward and
// backward of one layer in one direction), plus the small GEMMs around it. Python (cpu_fused.py) keeps the autograd wiring
// and the stacking; this file runs the time loop, which in Python costs tens of ATen calls per step.
//
// Per step t (rows b of the batch, G = gate rows of the variant, H hidden units):
//   forward:  A = h_{t-1} W_hh^T                      one GEMM (B, G) (packed kernel below, or BLAS)
//             [LN: A <- LN(A; g_hh, b_hh)]
//             [FGR: R = [i;f;o]_{t-1} W_fgr^T]        one GEMM (B, 3H)
//             gates, c_t, h_t from xg_t + A (+ R)      one vectorised pass over B x H
//             [LN: h_t = o act(LN(c_t; g_c, b_c))]
//   backward: dA_t from the saved gates and c         one pass over B x H
//             dh_{t-1} = dA_t W_hh                     one GEMM (through LN's backward first with LN)
//             [FGR: d[i;f;o]_{t-1} = dA_{ifo,t} W_fgr] two GEMMs
// Lengths arrive as a (T, B) mask: a masked row keeps its state, outputs zero and passes its state
// gradients through unchanged.
//
// Variant ids follow lstmkit.core.cells.VARIANTS; kVariants below is the same table as flags, and the
// Python side checks that its Variant objects map onto it.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

// The BLAS that libtorch_cpu carries (MKL on x86 wheels) exports the Fortran symbols; calling them
// directly skips the dispatcher and tensor bookkeeping of at::mm (~1-2 us a call, as much as a whole
// step at batch 1). Weak: where they are absent the code falls back to at::mm_out.
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
            const int*, const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
            const int*, const double*, const int*, const double*, double*, const int*) __attribute__((weak));
}

namespace {

// ------------------------------------------------------------------------------------------ GEMM
// Row-major C (M, N) = beta C + op(A) op(B), op(X) = X or X^T; lda/ldb/ldc are row strides.
template <typename T>
void blas_call(char ta, char tb, int m, int n, int k, const T* a, int lda, const T* b, int ldb, T beta, T* c,
               int ldc);

template <>
void blas_call<float>(char ta, char tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                      float beta, float* c, int ldc) {
  const float one = 1.0f;
  sgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &beta, c, &ldc);
}

template <>
void blas_call<double>(char ta, char tb, int m, int n, int k, const double* a, int lda, const double* b, int ldb,
                       double beta, double* c, int ldc) {
  const double one = 1.0;
  dgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &beta, c, &ldc);
}

template <typename T>
bool have_blas();
template <>
bool have_blas<float>() { return sgemm_ != nullptr; }
template <>
bool have_blas<double>() { return dgemm_ != nullptr; }

template <typename T>
void gemm_rm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
             int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (have_blas<T>()) {
    // Column-major BLAS sees every row-major matrix transposed: C^T = op(B)^T op(A)^T.
    blas_call<T>(trans_b ? 'T' : 'N', trans_a ? 'T' : 'N', (int)N, (int)M, (int)K, B, (int)ldb, A, (int)lda, beta,
                 C, (int)ldc);
    return;
  }
  auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  auto a = torch::from_blob(const_cast<T*>(A), {trans_a ? K : M, trans_a ? M : K}, {lda, 1}, opts);
  auto b = torch::from_blob(const_cast<T*>(B), {trans_b ? N : K, trans_b ? K : N}, {ldb, 1}, opts);
  auto c = torch::from_blob(C, {M, N}, {ldc, 1}, opts);
  auto prod = at::mm(trans_a ? a.t() : a, trans_b ? b.t() : b);
  if (beta == T(0)) {
    c.copy_(prod);
  } else {
    c.add_(prod);
  }
}

// A small-matrix GEMM for the per-step products. At the recurrent sizes of an LSTM (B up to a few
// dozen, H up to a few hundred) a BLAS call spends as much time repacking W every step as it computes;
// here W is packed once per sequence into (K, Np) row-major panels (Np: N rounded up to whole vectors,
// zero-padded) and a register-blocked kernel keeps an MR x NV-vector tile of C in registers over K.
// GCC/Clang vector extensions: 64-byte vectors map onto AVX-512, or pairs of AVX2 / NEON registers.
template <typename T>
struct VecT;
template <>
struct VecT<float> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct VecT<double> {
  typedef double type __attribute__((vector_size(64)));
};

template <typename T>
struct Packed {
  std::vector<T> data;  // (K, Np)
  int64_t K = 0, N = 0, Np = 0;
};

// A packed (K, N) matrix's row stride: N rounded up to whole vectors, and an odd number of cache lines:
// the micro-kernel walks down a column of tiles (one row of the panel per k), and with a row of 4 KB
// (N = 1024: an LSTM's G at H = 256) every k landed in the same cache sets, so a 1 MB W used a fraction
// of L1 and L2 (measured: G = 4H at H = 256 ran at 1.9x torch while G = 3H ran at 0.95x).
template <typename T>
Packed<T> packed_shape(int64_t K, int64_t N) {
  constexpr int64_t W = 64 / sizeof(T);
  Packed<T> p;
  p.K = K;
  p.N = N;
  p.Np = (N + W - 1) / W * W;
  if ((p.Np / W) % 2 == 0) p.Np += W;
  p.data.assign(K * p.Np, T(0));
  return p;
}

// Pack a row-major (K, N) matrix given as src with strides (sk, sn): (G, H) W_hh read as W^T, say.
template <typename T>
Packed<T> pack(const T* src, int64_t K, int64_t N, int64_t sk, int64_t sn) {
  Packed<T> p = packed_shape<T>(K, N);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) p.data[k * p.Np + n] = src[k * sk + n * sn];
  return p;
}

// C[0:MR, 0:ncols] (+)= A[0:MR, :] B[:, 0:NV vectors] (+ bias[0:ncols] on every row, when given);
// ncols <= NV vectors (the last tile is partial).
template <typename T, int MR, int NV>
inline void micro_kernel(int64_t K, const T* A, int64_t ars, int64_t aks, const T* Bp, int64_t ldb, T* C, int64_t ldc,
                         int64_t ncols, bool accumulate, const T* bias) {
  using V = typename VecT<T>::type;
  constexpr int64_t W = 64 / sizeof(T);
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = V{} ;
  for (int64_t k = 0; k < K; ++k) {
    V b[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&b[v], Bp + k * ldb + v * W, sizeof(V));
    for (int r = 0; r < MR; ++r) {
      const T a = A[r * ars + k * aks];
      for (int v = 0; v < NV; ++v) acc[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < MR; ++r) {
    T* c = C + r * ldc;
    if (ncols == NV * W) {
      for (int v = 0; v < NV; ++v) {
        V out = acc[r][v];
        if (accumulate) {
          V old;
          std::memcpy(&old, c + v * W, sizeof(V));
          out += old;
        }
        if (bias) {
          V add;
          std::memcpy(&add, bias + v * W, sizeof(V));
          out += add;
        }
        std::memcpy(c + v * W, &out, sizeof(V));
      }
    } else {
      T tmp[NV * W];
      std::memcpy(tmp, acc[r], sizeof(tmp));
      if (bias)
        for (int64_t n = 0; n < ncols; ++n) tmp[n] += bias[n];
      for (int64_t n = 0; n < ncols; ++n) c[n] = accumulate ? c[n] + tmp[n] : tmp[n];
    }
  }
}

// A single row (batch 1): there is one accumulator per vector of C, so the FMA latency over K, not the
// FMA throughput, bounds the product; four partial sums over interleaved k give four times the
// independent chains (at B = 1, H = 50 the product then runs at the speed of reading W from L2).
template <typename T, int NV>
inline void row_kernel(int64_t K, const T* A, int64_t aks, const T* Bp, int64_t ldb, T* C, int64_t ncols,
                       bool accumulate, const T* bias) {
  using V = typename VecT<T>::type;
  constexpr int64_t W = 64 / sizeof(T);
  constexpr int S = 4;
  V acc[S][NV];
  for (int s = 0; s < S; ++s)
    for (int v = 0; v < NV; ++v) acc[s][v] = V{};
  int64_t k = 0;
  for (; k + S <= K; k += S) {
    for (int s = 0; s < S; ++s) {
      const T a = A[(k + s) * aks];
      for (int v = 0; v < NV; ++v) {
        V b;
        std::memcpy(&b, Bp + (k + s) * ldb + v * W, sizeof(V));
        acc[s][v] += a * b;
      }
    }
  }
  for (; k < K; ++k) {
    const T a = A[k * aks];
    for (int v = 0; v < NV; ++v) {
      V b;
      std::memcpy(&b, Bp + k * ldb + v * W, sizeof(V));
      acc[0][v] += a * b;
    }
  }
  T tmp[NV * W];
  for (int v = 0; v < NV; ++v) {
    V sum = (acc[0][v] + acc[1][v]) + (acc[2][v] + acc[3][v]);
    std::memcpy(tmp + v * W, &sum, sizeof(V));
  }
  if (bias)
    for (int64_t n = 0; n < ncols; ++n) tmp[n] += bias[n];
  for (int64_t n = 0; n < ncols; ++n) C[n] = accumulate ? C[n] + tmp[n] : tmp[n];
}

// Batch 1 streams all of W from L2 every step (FGR's 3H x 3H at H = 50 is 90 KB, more than L1). Read
// in (K, Np) rows, a block of 4 vectors takes 256 bytes of each 640-byte row; packed as panels instead
// (each column block's K rows contiguous), the same product streams whole panels:
// measured at K = N = 150, 516 vs 911 ns a product; K = 50, N = 200: 122 vs 224 ns.
template <typename T>
int64_t row_block_width(int64_t n, int64_t N) {
  constexpr int64_t W = 64 / sizeof(T);
  if (n + 4 * W <= N) return 4 * W;
  return N - n > W ? 2 * W : W;
}

// Panel-major copy of P's data: the block of columns [n, n + w) (w from row_block_width) holds its K
// rows of w values contiguously at K * n.
template <typename T>
std::vector<T> panels_of(const Packed<T>& P) {
  std::vector<T> out(P.K * P.Np, T(0));
  for (int64_t n = 0; n < P.N;) {
    const int64_t w = row_block_width<T>(n, P.N);
    for (int64_t k = 0; k < P.K; ++k)
      std::memcpy(out.data() + P.K * n + k * w, P.data.data() + k * P.Np + n, w * sizeof(T));
    n += w;
  }
  return out;
}

// One row of C (+)= A[k0:k0+K] P[k0:k0+K, :], in column blocks of row_block_width; from P's (K, Np) rows,
// or from its panels (panels_of) when given.
template <typename T>
void single_row(int64_t K, const T* A, int64_t aks, const Packed<T>& P, int64_t k0, T* C, bool accumulate,
                const std::vector<T>* panels = nullptr, const T* bias = nullptr) {
  constexpr int64_t W = 64 / sizeof(T);
  for (int64_t n = 0; n < P.N;) {
    const int64_t w = row_block_width<T>(n, P.N);
    const T* Bp = panels ? panels->data() + P.K * n + k0 * w : P.data.data() + k0 * P.Np + n;
    const int64_t ldb = panels ? w : P.Np;
    const int64_t ncols = std::min(P.N - n, w);
    if (w == 4 * W)
      row_kernel<T, 4>(K, A, aks, Bp, ldb, C + n, ncols, accumulate, bias ? bias + n : nullptr);
    else if (w == 2 * W)
      row_kernel<T, 2>(K, A, aks, Bp, ldb, C + n, ncols, accumulate, bias ? bias + n : nullptr);
    else
      row_kernel<T, 1>(K, A, aks, Bp, ldb, C + n, ncols, accumulate, bias ? bias + n : nullptr);
    n += w;
  }
}

// One block of MR rows across all N columns: tiles of NV vectors, then a partial tile.
template <typename T, int MR, int NV>
void row_block(int64_t K, const T* A, int64_t ars, int64_t aks, const Packed<T>& P, int64_t k0, T* C, int64_t ldc,
               bool accumulate, const T* bias) {
  constexpr int64_t W = 64 / sizeof(T);
  const T* Bp = P.data.data() + k0 * P.Np;
  int64_t n = 0;
  for (; n + NV * W <= P.N; n += NV * W)
    micro_kernel<T, MR, NV>(K, A, ars, aks, Bp + n, P.Np, C + n, ldc, NV * W, accumulate, bias ? bias + n : nullptr);
  for (; n < P.N; n += 2 * W) {
    if (P.N - n > W)
      micro_kernel<T, MR, 2>(K, A, ars, aks, Bp + n, P.Np, C + n, ldc, std::min(P.N - n, 2 * W), accumulate,
                               bias ? bias + n : nullptr);
    else
      micro_kernel<T, MR, 1>(K, A, ars, aks, Bp + n, P.Np, C + n, ldc, P.N - n, accumulate, bias ? bias + n : nullptr);
  }
}

// Row-major C (M, N) (+)= A (M, K) P[k0:k0+K, :] (+ bias on every row, when given), A's element (m, k) at A[m * ars + k * aks]. Tiles of 12 rows x 2 vectors keep 24 accumulators in
// registers (measured on AVX-512: ~3x the GMAC/s of 4 x 2 at B = 32, H = 50; 2x MKL's sgemm there); a
// single row (batch 1) has its own kernel.
template <typename T>
void gemm_packed(int64_t M, int64_t K, const T* A, int64_t ars, int64_t aks, const Packed<T>& P, int64_t k0, T* C,
                 int64_t ldc, bool accumulate, const T* bias = nullptr) {
  constexpr int MR = 12;
  if (M == 1) {
    single_row<T>(K, A, aks, P, k0, C, accumulate, nullptr, bias);
    return;
  }
  auto rows = [&](int64_t m, int64_t m1) {
    // 12-row tiles, but never leaving a 4-row one behind: the last 16 rows as 8 + 8, not 12 + 4 (measured
    // at M = 16, K = 50, N = 200, 1.43 vs 1.98 us; a thread's half of B = 32 is such a block). (The
    // first form of this rule stopped at the first tile whenever M % 12 == 4: M = 100, FGR's dW_fgr rows
    // i and f, ran in 8-row tiles only.)
    // A range that 10-row tiles divide and 12-row ones do not (M = 50: five tiles, not 12 + 12 + 12 + 8
    // + 4 + 2) runs in those (20 accumulators; the 4- and 2-row tiles are latency-bound).
    if ((m1 - m) % MR != 0 && (m1 - m) % 10 == 0) {
      for (; m < m1; m += 10) row_block<T, 10, 2>(K, A + m * ars, ars, aks, P, k0, C + m * ldc, ldc, accumulate, bias);
      return;
    }
    for (; m + MR <= m1 && m1 - m != 16; m += MR)
      row_block<T, MR, 2>(K, A + m * ars, ars, aks, P, k0, C + m * ldc, ldc, accumulate, bias);
    for (; m + 8 <= m1; m += 8) row_block<T, 8, 2>(K, A + m * ars, ars, aks, P, k0, C + m * ldc, ldc, accumulate, bias);
    for (; m + 4 <= m1; m += 4) row_block<T, 4, 2>(K, A + m * ars, ars, aks, P, k0, C + m * ldc, ldc, accumulate, bias);
    for (; m + 2 <= m1; m += 2) row_block<T, 2, 2>(K, A + m * ars, ars, aks, P, k0, C + m * ldc, ldc, accumulate, bias);
    for (; m < m1; ++m) single_row<T>(K, A + m * ars, aks, P, k0, C + m * ldc, accumulate, nullptr, bias);
  };
  // Threads split the rows in whole tiles, and only when there is enough work to pay for waking them
  // (counting the stores: a narrow K, e.g. a univariate series' input projection, is bound by writing C).
  const int64_t work = M * (K + 4) * P.Np;
  if (work < ((int64_t)1 << 20) || M < 2 * MR) {
    rows(0, M);
  } else {
    at::parallel_for(0, (M + MR - 1) / MR, 1, [&](int64_t t0, int64_t t1) { rows(t0 * MR, std::min(M, t1 * MR)); });
  }
}

// The recurrent product of one step: the packed kernel up to 16 MB of W (measured at B = 16, one
// thread: 61 vs 106 ms for MKL's sgemm over 64 steps at H = 768, 27 vs 48 ms over 256 at H = 256 —
// the BLAS repacks W on every call), the BLAS beyond.
template <typename T>
struct Recurrent {
  Packed<T> packed;
  std::vector<T> panels;  // panels_of(packed), for a batch of one
  const T* w = nullptr;  // row-major (rows, cols) as given
  int64_t rows = 0, cols = 0;
  bool use_packed = false, transposed = false;

  // op(W) = W^T (transposed) or W; the product is A (M, K) op(W)[k0:k0+K, :]. one_row: every product
  // will have M = 1 (batch 1), so W is laid out for that.
  Recurrent(const T* w_, int64_t rows_, int64_t cols_, bool transposed_, bool one_row = false) : w(w_), rows(rows_),
      cols(cols_), transposed(transposed_) {
    use_packed = rows * cols * (int64_t)sizeof(T) <= ((int64_t)1 << 24) || !have_blas<T>();
    if (use_packed)
      packed = transposed ? pack<T>(w, cols, rows, 1, cols) : pack<T>(w, rows, cols, cols, 1);
    if (use_packed && one_row) {
      panels = panels_of(packed);
      packed.data = std::vector<T>();  // only the shape is used from here on
    }
  }

  void apply(int64_t M, int64_t K, const T* A, int64_t lda, int64_t k0, T* C, int64_t ldc, bool accumulate) const {
    if (use_packed && !panels.empty()) {
      TORCH_CHECK(M == 1, "lstmkit cpu_fused: a one-row product layout used for ", M, " rows");
      single_row<T>(K, A, 1, packed, k0, C, accumulate, &panels);
    } else if (use_packed) {
      gemm_packed<T>(M, K, A, lda, 1, packed, k0, C, ldc, accumulate);
    } else if (transposed) {  // op(W)[k0:k0+K, :] = W[:, k0:k0+K]^T
      gemm_rm<T>(false, true, M, rows, K, A, lda, w + k0, cols, accumulate ? T(1) : T(0), C, ldc);
    } else {
      gemm_rm<T>(false, false, M, cols, K, A, lda, w + k0 * cols, cols, accumulate ? T(1) : T(0), C, ldc);
    }
  }
};

// ------------------------------------------------------------------------------------------ activations
// float: branch-free exp and expm1 (range reduction x = n ln2 + r, |r| <= ln2/2, and e^r - 1 = r + r^2 p(r)
// with p a degree-4 polynomial fitted here for minimal relative error: 1.3 ulp at most over the float
// range, as Cephes' degree-5 expf) so that the pointwise loops vectorise; std::exp would be one scalar
// libm call per element. double: libm.
struct ExpParts {
  float scale;  // 2^n
  float q;      // e^r - 1
};
inline ExpParts exp_parts(float x) {
  // Round to nearest by the 1.5·2^23 trick: std::floor does not vectorise without -fno-trapping-math.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln2 in two parts: r exact to ~1 ulp
  float p = 1.3814613093e-3f;
  p = p * r + 8.3687099613e-3f;
  p = p * r + 4.1668387374e-2f;
  p = p * r + 1.6666520689e-1f;
  p = p * r + 4.9999993452e-1f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return {scale, p * r * r + r};
}

inline float exp_approx(float x) {
  const ExpParts e = exp_parts(std::min(std::max(x, -87.3f), 88.3f));
  return e.scale * e.q + e.scale;
}

// e^x - 1 for x in [-40, 40], accurate relative to the result near 0 as well (for n = 0 it is r + r^2 p).
inline float expm1_approx(float x) {
  const ExpParts e = exp_parts(std::min(std::max(x, -40.0f), 40.0f));
  return e.scale * e.q + (e.scale - 1.0f);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// tanh x = (e^2x - 1) / (e^2x + 1) with e^2x - 1 from expm1: one exponential and one division, no
// cancellation near 0 (max error 1.5 ulp; 2x is clamped to +-40, where tanh is +-1 in float).
inline float tanh_(float x) {
  const float em = expm1_approx(2.0f * x);
  return em / (em + 2.0f);
}

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_(double x) { return std::tanh(x); }

// ------------------------------------------------------------------------------------------ lanes
// The pointwise passes run one cell body (cell_forward, cell_backward) on a lane type: T itself, one
// unit at a time (float64, and CPUs without AVX-512: the compiler vectorises that loop), or N vectors of
// 16 floats written out with AVX-512 (VecLanesN). The compiler's own vectorisation of the float loop left
// a row's last H % 16 units to scalar code and divided with vdivps: at H = 50 those 2 units cost 1.4
// vector iterations (the forward's pointwise pass took 89 us a layer at the seed's size, 61 us at H =
// 48). Written out, the tail is one masked vector and 1/y is rcp14 refined by a Newton step.
template <typename T>
struct ScalarLanes {
  using X = T;
  int64_t j;
  X ld(const T* p) const { return p[j]; }
  void st(T* p, X v) const { p[j] = v; }
};

#if defined(__AVX512F__)
using F16 = VecT<float>::type;
using I16 = int32_t __attribute__((vector_size(64)));

inline F16 splat(float v) { return F16{} + v; }

// 1/y: rcp14 (relative error below 2^-14) and one Newton step, r (2 - y r): about 1 ulp, as the division
// (vdivps: one per several cycles, five per unit in the forward pass). y is finite and >= 1 wherever
// it is used here (1 + e^-x with x clamped, e^2x + 1).
__attribute__((always_inline)) inline F16 recip(F16 y) {
  const F16 r = (F16)_mm512_rcp14_ps((__m512)y);
  return r * (2.0f - y * r);
}

// exp_parts, 16 lanes at a time (the same steps and constants).
__attribute__((always_inline)) inline void exp_parts(F16 x, F16& scale, F16& q) {
  const F16 n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const F16 r = x - n * 0.693359375f + n * 2.12194440e-4f;
  F16 p = splat(1.3814613093e-3f);
  p = p * r + 8.3687099613e-3f;
  p = p * r + 4.1668387374e-2f;
  p = p * r + 1.6666520689e-1f;
  p = p * r + 4.9999993452e-1f;
  const I16 bits = (__builtin_convertvector(n, I16) + 127) << 23;
  scale = (F16)bits;
  q = p * r * r + r;
}

__attribute__((always_inline)) inline F16 clamp(F16 x, float lo, float hi) {
  return (F16)_mm512_min_ps(_mm512_max_ps((__m512)x, (__m512)splat(lo)), (__m512)splat(hi));
}

__attribute__((always_inline)) inline F16 sigmoid(F16 x) {
  F16 scale, q;
  exp_parts(clamp(-x, -87.3f, 88.3f), scale, q);
  return recip(scale * q + scale + 1.0f);
}

__attribute__((always_inline)) inline F16 tanh_(F16 x) {
  F16 scale, q;
  exp_parts(clamp(2.0f * x, -40.0f, 40.0f), scale, q);
  const F16 em = scale * q + (scale - 1.0f);
  return em * recip(em + 2.0f);
}

// N vectors of 16 units at a time: every operation on each vector, so that the pointwise body's N
// independent dependency chains sit next to each other in the instruction stream. A unit's gates are a
// chain of ~100 dependent cycles (sigmoid, then c, then the output gate and tanh c); one vector at a
// time, the core's schedulers hold about one iteration's chain and wait on it.
#define LSTMKIT_AI __attribute__((always_inline)) inline
#define LSTMKIT_EACH(expr)                          \
  Fv<N> r;                                          \
  _Pragma("GCC unroll 8") for (int q = 0; q < N; ++q) r.v[q] = (expr); \
  return r
template <int N>
struct Fv {
  F16 v[N];
};
template <int N> LSTMKIT_AI Fv<N> operator+(Fv<N> x, Fv<N> y) { LSTMKIT_EACH(x.v[q] + y.v[q]); }
template <int N> LSTMKIT_AI Fv<N> operator-(Fv<N> x, Fv<N> y) { LSTMKIT_EACH(x.v[q] - y.v[q]); }
template <int N> LSTMKIT_AI Fv<N> operator*(Fv<N> x, Fv<N> y) { LSTMKIT_EACH(x.v[q] * y.v[q]); }
template <int N> LSTMKIT_AI Fv<N> operator-(Fv<N> x) { LSTMKIT_EACH(-x.v[q]); }
template <int N> LSTMKIT_AI Fv<N> operator+(Fv<N> x, float s) { LSTMKIT_EACH(x.v[q] + s); }
template <int N> LSTMKIT_AI Fv<N> operator-(Fv<N> x, float s) { LSTMKIT_EACH(x.v[q] - s); }
template <int N> LSTMKIT_AI Fv<N> operator*(Fv<N> x, float s) { LSTMKIT_EACH(x.v[q] * s); }
template <int N> LSTMKIT_AI Fv<N> operator+(float s, Fv<N> x) { LSTMKIT_EACH(s + x.v[q]); }
template <int N> LSTMKIT_AI Fv<N> operator-(float s, Fv<N> x) { LSTMKIT_EACH(s - x.v[q]); }
template <int N> LSTMKIT_AI Fv<N> operator*(float s, Fv<N> x) { LSTMKIT_EACH(s * x.v[q]); }
template <int N> LSTMKIT_AI Fv<N>& operator+=(Fv<N>& x, Fv<N> y) { return x = x + y; }
template <int N> LSTMKIT_AI Fv<N>& operator-=(Fv<N>& x, Fv<N> y) { return x = x - y; }
template <int N> LSTMKIT_AI Fv<N>& operator*=(Fv<N>& x, Fv<N> y) { return x = x * y; }
template <int N> LSTMKIT_AI Fv<N> sigmoid(Fv<N> x) { LSTMKIT_EACH(sigmoid(x.v[q])); }
template <int N> LSTMKIT_AI Fv<N> tanh_(Fv<N> x) { LSTMKIT_EACH(tanh_(x.v[q])); }
#undef LSTMKIT_EACH
#undef LSTMKIT_AI

// Units j to j + 16 N; with TAIL the last vector only to the first k lanes (a row's end): the other
// vectors load and store whole (every vector masked, with all lanes set but the last's, the forward at
// H = 64 took 450 instead of 432 us a layer, the backward 409 instead of 392).
template <int N, bool TAIL>
struct VecLanesN {
  using X = Fv<N>;
  int64_t j;
  __mmask16 k;
  X ld(const float* p) const {
    X r;
#pragma GCC unroll 8
    for (int q = 0; q < N; ++q) {
      if (TAIL && q == N - 1)
        r.v[q] = (F16)_mm512_maskz_loadu_ps(k, p + j + 16 * q);
      else
        r.v[q] = (F16)_mm512_loadu_ps(p + j + 16 * q);
    }
    return r;
  }
  void st(float* p, X v) const {
#pragma GCC unroll 8
    for (int q = 0; q < N; ++q) {
      if (TAIL && q == N - 1)
        _mm512_mask_storeu_ps(p + j + 16 * q, k, (__m512)v.v[q]);
      else
        _mm512_storeu_ps(p + j + 16 * q, (__m512)v.v[q]);
    }
  }
};
#endif

// Vectors a pointwise iteration takes (measured at B = 16, T = 50, H = 50, one thread; forward: 4
// vectors 139 us a layer against 157 with 2 and 155 with 1, FGR 315 / 325 / 334; backward: 1 vector
// 118 us against 125 with 2, FGR 300 / 312, its body keeping more values live than there are registers).
constexpr int kForwardLanes = 4, kBackwardLanes = 1;
// Runs body(lanes) over units [0, n) of a row: with AVX-512, 16 N floats at a time, then a row's last
// units as the fewest vectors that cover them (the last one masked); else one unit at a time.
template <typename T, int N, typename Body>
__attribute__((always_inline)) inline void over_units(int64_t n, Body body) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    int64_t j = 0;
    for (; j + 16 * N <= n; j += 16 * N) body(VecLanesN<N, false>{j, 0});
    const int64_t rest = n - j;
    if (rest == 0) return;
    const int64_t m = (rest + 15) / 16;
    const __mmask16 k = (__mmask16)(rest % 16 == 0 ? 0xFFFF : (1u << (rest % 16)) - 1u);
    if constexpr (N >= 4) {
      if (m == 4) { body(VecLanesN<4, true>{j, k}); return; }
    }
    if constexpr (N >= 3) {
      if (m == 3) { body(VecLanesN<3, true>{j, k}); return; }
    }
    if constexpr (N >= 2) {
      if (m == 2) { body(VecLanesN<2, true>{j, k}); return; }
    }
    body(VecLanesN<1, true>{j, k});
    return;
  }
#endif
#pragma GCC ivdep
  for (int64_t j = 0; j < n; ++j) body(ScalarLanes<T>{j});
}

// ------------------------------------------------------------------------------------------ variants
struct Flags {
  bool has_i, has_f, has_o, coupled, cand_tanh, out_tanh, peep, fgr;
};

// Same order as lstmkit.core.cells.VARIANTS.
constexpr Flags kVariants[] = {
    //  i      f      o      cifg   g tanh  h tanh  peep   fgr
    {true, true, true, false, true, true, false, false},     // standard
    {true, true, true, false, true, true, true, false},      // peephole
    {false, true, true, false, true, true, true, false},     // nig
    {true, false, true, false, true, true, true, false},     // nfg
    {true, true, false, false, true, true, true, false},     // nog
    {true, true, true, false, false, true, true, false},     // niaf
    {true, true, true, false, true, false, true, false},     // noaf
    {true, false, true, true, true, true, true, false},      // cifg
    {true, true, true, false, true, true, true, true},       // fgr
};
constexpr int kNumVariants = sizeof(kVariants) / sizeof(kVariants[0]);

struct Layout {  // column offsets of the gates in a (·, G) row, -1 where the variant has none
  int64_t i, f, g, o, G;
  int64_t pi, pf, po;  // rows of weight_peep
};

Layout layout(const Flags& v, int64_t H) {
  Layout L{-1, -1, -1, -1, 0, -1, -1, -1};
  int64_t k = 0, p = 0;
  if (v.has_i) L.i = H * k++;
  if (v.has_f) L.f = H * k++;
  L.g = H * k++;
  if (v.has_o) L.o = H * k++;
  L.G = H * k;
  if (v.peep) {
    if (v.has_i) L.pi = p++;
    if (v.has_f) L.pf = p++;
    if (v.has_o) L.po = p++;
  }
  return L;
}

// Rows per thread for a whole call (a thread takes its rows through every step: its GEMM rows and its
// pointwise pass), or B (one chunk: the calling thread) when the call is too small to pay for waking
// threads.
int64_t step_grain(int64_t B, int64_t T, int64_t G, int64_t H, bool packed) {
  const int64_t threads = at::get_num_threads();
  // Below ~1M multiply-adds a call (~10 us) waking a second thread costs more than it saves; the BLAS
  // path (W over 16 MB) threads inside each product instead.
  if (threads < 2 || !packed || B < 2 || B * T * G * H < ((int64_t)1 << 20)) return B;
  return (B + threads - 1) / threads;
}

// Layer norm (cells.py: LN over the G rows of W_hh h, and over the H units of c before the output
// activation). Gains/shifts, and what the backward pass needs: the normalised values and 1/std per row.
template <typename T>
struct LayerNorm {
  const T *g_hh = nullptr, *b_hh = nullptr, *g_c = nullptr, *b_c = nullptr;
  T eps = T(1e-5);
  T *hat_hh = nullptr, *rstd_hh = nullptr, *hat_c = nullptr, *rstd_c = nullptr;  // (B, G), (B,), (B, H), (B,)
  T *mean_hh = nullptr, *mean_c = nullptr;  // forward only: (B,) each
  T* red = nullptr;  // backward only: (B, 4) per-row sums (c: sum, dot; W_hh h: sum, dot)
  // backward only: per-row sums of the gain/shift gradients, scratch rows, and d(W_hh h)
  T *dg_hh = nullptr, *db_hh = nullptr, *dg_c = nullptr, *db_c = nullptr;  // (B, G), (B, G), (B, H), (B, H)
  T *y = nullptr, *dc = nullptr, *dhg = nullptr;  // (B, H), (B, H), (B, G)
};

// Sums over a row in vector lanes: a scalar running sum is one dependent add per element (the compiler
// may not reorder floating-point adds), which made layer norm's reductions cost more than the GEMM.
// The sum of a vector's lanes as a tree (log2(W) dependent adds, not W), and a row's tail (< 2W values)
// into 2 partial sums: at H = 50 a serial horizontal sum and tail were most of a row's reduction time.
template <typename T, int Bytes>
struct VecN {
  typedef T type __attribute__((vector_size(Bytes)));
};
template <typename T, int Bytes>
inline T hsum_n(typename VecN<T, Bytes>::type a) {
  if constexpr (Bytes == 2 * sizeof(T)) {
    return a[0] + a[1];
  } else {  // halves in registers (a trip through memory stalled on store forwarding)
    using Hv = typename VecN<T, Bytes / 2>::type;
    Hv lo, hi;
    std::memcpy(&lo, &a, Bytes / 2);
    std::memcpy(&hi, reinterpret_cast<const char*>(&a) + Bytes / 2, Bytes / 2);
    return hsum_n<T, Bytes / 2>(lo + hi);
  }
}
template <typename T>
inline T hsum(typename VecT<T>::type a) {
  return hsum_n<T, 64>(a);
}

// Two sums over a row of x (and y, read alongside): term(u, v, acc0, acc1) adds one element's
// contributions, called on whole vectors (two chains of each) and then on the scalar tail (two chains).
template <typename T, typename Term>
__attribute__((always_inline)) inline void lane_sums(const T* x, const T* y, int64_t n, Term term, T& out0, T& out1) {
  using V = typename VecT<T>::type;
  constexpr int64_t W = 64 / sizeof(T);
  V a0 = V{}, a1 = V{}, b0 = V{}, b1 = V{};
  int64_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    V u0, u1, v0, v1;
    std::memcpy(&u0, x + j, sizeof(V));
    std::memcpy(&u1, x + j + W, sizeof(V));
    std::memcpy(&v0, y + j, sizeof(V));
    std::memcpy(&v1, y + j + W, sizeof(V));
    term(u0, v0, a0, b0);
    term(u1, v1, a1, b1);
  }
  if (j + W <= n) {
    V u0, v0;
    std::memcpy(&u0, x + j, sizeof(V));
    std::memcpy(&v0, y + j, sizeof(V));
    term(u0, v0, a0, b0);
    j += W;
  }
  T s0 = T(0), s1 = T(0), e0 = T(0), e1 = T(0);
  for (; j + 1 < n; j += 2) {
    term(x[j], y[j], s0, e0);
    term(x[j + 1], y[j + 1], s1, e1);
  }
  if (j < n) term(x[j], y[j], s0, e0);
  out0 = hsum<T>(a0 + a1) + (s0 + s1);
  out1 = hsum<T>(b0 + b1) + (e0 + e1);
}

// sum_j x_j and sum_j x_j y_j in one pass.
template <typename T>
inline void lane_sum_dot(const T* x, const T* y, int64_t n, T& sum, T& dot) {
  lane_sums(x, y, n, [](auto u, auto v, auto& a, auto& d) { a += u; d += u * v; }, sum, dot);
}

// Mean and 1/sqrt(var + eps) of n values (two passes, as torch's layer_norm, accumulated in T).
template <typename T>
__attribute__((always_inline)) inline void moments(const T* x, int64_t n, T eps, T& mean, T& rstd) {
  T sum, var, unused;
  lane_sums(x, x, n, [](auto u, auto, auto& a, auto&) { a += u; }, sum, unused);
  mean = sum / T(n);
  const T m = mean;
  lane_sums(x, x, n, [m](auto u, auto, auto& a, auto&) { a += (u - m) * (u - m); }, var, unused);
  rstd = T(1) / std::sqrt(var / T(n) + eps);
}

// One forward step over rows [b0, b1). pre: (B, G) recurrent part, turned into the gate activations
// in place; xg: (B, G); r: (B, 3H) FGR recurrence or null; h, c: (B, H) state, updated in place;
// c_out: where c_t goes ((B, H), may equal c); g_in, g_out: (B, 3H) FGR's gates of the previous step and
// where this step's go (may be the same buffer: the product has read it already); out: (B, H).
// With layer norm the step runs in phases over all rows: a row's mean and variance are chains of
// dependent adds (~100 cycles at G = 200), and a row's pointwise loop cannot start before its own
// statistics; rows are independent, so computing every row's statistics in one loop lets the core
// overlap the chains of several rows (measured 5.3 -> 4.2 us a step at B = 32, H = 50).
template <typename T, int V, bool LN>
void step_forward(int64_t b0, int64_t b1, int64_t H, T* pre, const T* xg, const T* r, T* h, const T* c_in, T* c_out,
                  const T* g_in, T* g_out, T* out, const uint8_t* mask, const T* peep, const LayerNorm<T>& ln) {
  constexpr Flags v = kVariants[V];
  const Layout L = layout(v, H);
  const int64_t G = L.G;
  const T* pi = v.peep && v.has_i ? peep + L.pi * H : nullptr;
  const T* pf = v.peep && v.has_f ? peep + L.pf * H : nullptr;
  const T* po = v.peep && v.has_o ? peep + L.po * H : nullptr;
  if constexpr (LN) {  // phase 1: LN statistics of every row of W_hh h
    for (int64_t b = b0; b < b1; ++b) {
      if (mask && !mask[b]) continue;
      moments(pre + b * G, G, ln.eps, ln.mean_hh[b], ln.rstd_hh[b]);
    }
  }
  for (int64_t b = b0; b < b1; ++b) {  // phase 2: gates and c_t (and h_t without layer norm)
    T* hb = h + b * H;
    const T* cp = c_in + b * H;
    T* cb = c_out + b * H;
    T* ob = out + b * H;
    if (mask && !mask[b]) {  // past this sequence's end: frozen state, zero output
      if (cb != cp) std::memcpy(cb, cp, H * sizeof(T));
      if (v.fgr && g_out != g_in) std::memcpy(g_out + b * 3 * H, g_in + b * 3 * H, 3 * H * sizeof(T));
      std::memset(ob, 0, H * sizeof(T));
      continue;
    }
    T* a = pre + b * G;
    const T* x = xg + b * G;
    const T* rb = v.fgr ? r + b * 3 * H : nullptr;
    T* gb = v.fgr ? g_out + b * 3 * H : nullptr;
    T* hat = LN ? ln.hat_hh + b * G : nullptr;
    const T mean = LN ? ln.mean_hh[b] : T(0), rstd = LN ? ln.rstd_hh[b] : T(0);
    over_units<T, kForwardLanes>(H, [&](const auto& l) {
      using X = typename std::decay_t<decltype(l)>::X;
      // The recurrent part of gate block k (L.i, …), through LN(W_hh h) (its normalised value kept for
      // the backward).
      auto rec = [&](int64_t k) -> X {
        if constexpr (LN) {
          const X n = (l.ld(a + k) - mean) * rstd;
          l.st(hat + k, n);
          return l.ld(ln.g_hh + k) * n + l.ld(ln.b_hh + k);
        } else {
          return l.ld(a + k);
        }
      };
      const X one = X{} + T(1);
      const X c_prev = l.ld(cp);
      X i = one, f = one, o = one;
      if constexpr (v.has_i) {
        X ai = rec(L.i) + l.ld(x + L.i);
        if constexpr (v.peep) ai += l.ld(pi) * c_prev;
        if constexpr (v.fgr) ai += l.ld(rb);
        i = sigmoid(ai);
      }
      if constexpr (v.coupled) {
        f = one - i;
      } else if constexpr (v.has_f) {
        X af = rec(L.f) + l.ld(x + L.f);
        if constexpr (v.peep) af += l.ld(pf) * c_prev;
        if constexpr (v.fgr) af += l.ld(rb + H);
        f = sigmoid(af);
      }
      X g = rec(L.g) + l.ld(x + L.g);
      if constexpr (v.cand_tanh) g = tanh_(g);
      const X c = f * c_prev + i * g;
      if constexpr (v.has_o) {
        X ao = rec(L.o) + l.ld(x + L.o);
        if constexpr (v.peep) ao += l.ld(po) * c;  // the output peephole reads the new c_t
        if constexpr (v.fgr) ao += l.ld(rb + 2 * H);
        o = sigmoid(ao);
      }
      if constexpr (!LN) {
        X y = c;
        if constexpr (v.out_tanh) y = tanh_(c);
        const X hn = o * y;
        l.st(hb, hn);
        l.st(ob, hn);
      }
      if constexpr (v.has_i) l.st(a + L.i, i);
      if constexpr (v.has_f) l.st(a + L.f, f);
      l.st(a + L.g, g);
      if constexpr (v.has_o) l.st(a + L.o, o);
      l.st(cb, c);
      if constexpr (v.fgr) {
        l.st(gb, i);
        l.st(gb + H, f);
        l.st(gb + 2 * H, o);
      }
    });
  }
  if constexpr (LN) {
    for (int64_t b = b0; b < b1; ++b) {  // phase 3: LN statistics of every row of c_t
      if (mask && !mask[b]) continue;
      moments(c_out + b * H, H, ln.eps, ln.mean_c[b], ln.rstd_c[b]);
    }
    for (int64_t b = b0; b < b1; ++b) {  // phase 4: h = o act(LN(c))
      if (mask && !mask[b]) continue;
      const T* cb = c_out + b * H;
      const T* a = pre + b * G;
      T* hat = ln.hat_c + b * H;
      T* hb = h + b * H;
      T* ob = out + b * H;
      const T mean = ln.mean_c[b], rstd = ln.rstd_c[b];
#pragma GCC ivdep
      for (int64_t j = 0; j < H; ++j) {
        const T n = (cb[j] - mean) * rstd;
        hat[j] = n;
        T y = ln.g_c[j] * n + ln.b_c[j];
        if constexpr (v.out_tanh) y = tanh_(y);
        const T hn = (v.has_o ? a[L.o + j] : T(1)) * y;
        hb[j] = hn;
        ob[j] = hn;
      }
    }
  }
}

// One backward step over rows [b0, b1). acts: (B, G) saved gates of step t; da: (B, G) output, the
// pre-activation gradient; dout: (B, H); dh, dc: (B, H) carried state gradients, dc updated in place,
// dh left as the masked rows' pass-through (zero on active rows, the GEMM adds dA W_hh after);
// dgc: (B, 3H) FGR's carried gradient of [i;f;o]_t, cleared on active rows (the GEMMs refill it).
// With layer norm, in phases over all rows as the forward step (each row's two sums are one chain
// of dependent adds that the next loop of the same row waits for; different rows' chains overlap).
template <typename T, int V, bool LN>
void step_backward(int64_t b0, int64_t b1, int64_t H, const T* acts, T* da, const T* dout, T* dh, T* dc, T* dgc,
                   const T* c_prev_all, const T* c_all, const uint8_t* mask, const T* peep, T* dpeep,
                   const LayerNorm<T>& ln) {
  constexpr Flags v = kVariants[V];
  const Layout L = layout(v, H);
  const int64_t G = L.G;
  const T* pi = v.peep && v.has_i ? peep + L.pi * H : nullptr;
  const T* pf = v.peep && v.has_f ? peep + L.pf * H : nullptr;
  const T* po = v.peep && v.has_o ? peep + L.po * H : nullptr;
  if constexpr (LN) {  // phase 1: back through h = o act(LN(c)) up to LN's two sums, every row
    for (int64_t b = b0; b < b1; ++b) {
      if (mask && !mask[b]) continue;
      const T* ab = acts + b * G;
      const T* dob = dout + b * H;
      const T* dhb = dh + b * H;
      const T* hat = ln.hat_c + b * H;
      T* yb = ln.y + b * H;
      T* dlb = ln.dc + b * H;
#pragma GCC ivdep
      for (int64_t j = 0; j < H; ++j) {
        const T co = ln.g_c[j] * hat[j] + ln.b_c[j];
        T y = co, dy = T(1);
        if constexpr (v.out_tanh) {
          y = tanh_(co);
          dy = T(1) - y * y;
        }
        const T o = v.has_o ? ab[L.o + j] : T(1);
        const T dco = (dhb[j] + dob[j]) * o * dy;
        yb[j] = y;
        ln.dg_c[b * H + j] += dco * hat[j];
        ln.db_c[b * H + j] += dco;
        dlb[j] = dco * ln.g_c[j];
      }
      lane_sum_dot(dlb, hat, H, ln.red[4 * b], ln.red[4 * b + 1]);
    }
  }
  for (int64_t b = b0; b < b1; ++b) {  // phase 2: the cell's backward (and LN(W_hh h)'s up to its sums)
    T* dab = da + b * G;
    if (mask && !mask[b]) {  // frozen step: state gradients pass through, nothing reaches the gates
      std::memset(dab, 0, G * sizeof(T));
      if constexpr (LN) std::memset(ln.dhg + b * G, 0, G * sizeof(T));
      continue;
    }
    const T* ab = acts + b * G;
    const T* cp = c_prev_all + b * H;
    const T* cn = c_all + b * H;
    const T* dob = dout + b * H;
    T* dhb = dh + b * H;
    T* dcb = dc + b * H;
    T* dg3 = v.fgr ? dgc + b * 3 * H : nullptr;
    // Peephole gradients, summed over steps per row (rows are split between threads): (B, n_peep, H).
    T* dpi = v.peep && v.has_i ? dpeep + (b * 3 + L.pi) * H : nullptr;
    T* dpf = v.peep && v.has_f && !v.coupled ? dpeep + (b * 3 + L.pf) * H : nullptr;
    T* dpo = v.peep && v.has_o ? dpeep + (b * 3 + L.po) * H : nullptr;
    const T* yb = LN ? ln.y + b * H : nullptr;
    const T* dlb = LN ? ln.dc + b * H : nullptr;
    const T* hat_c = LN ? ln.hat_c + b * H : nullptr;
    const T rstd_c = LN ? ln.rstd_c[b] : T(0);
    const T m1_c = LN ? ln.red[4 * b] / T(H) : T(0), m2_c = LN ? ln.red[4 * b + 1] / T(H) : T(0);
    over_units<T, kBackwardLanes>(H, [&](const auto& l) {
      using X = typename std::decay_t<decltype(l)>::X;
      const X one = X{} + T(1);
      const X c_prev = l.ld(cp), c = l.ld(cn);
      X i = one, f = one, o = one;
      if constexpr (v.has_i) i = l.ld(ab + L.i);
      if constexpr (v.coupled) {
        f = one - i;
      } else if constexpr (v.has_f) {
        f = l.ld(ab + L.f);
      }
      const X g = l.ld(ab + L.g);
      if constexpr (v.has_o) o = l.ld(ab + L.o);
      const X dht = l.ld(dhb) + l.ld(dob);
      X y, dct;
      if constexpr (LN) {
        y = l.ld(yb);
        dct = l.ld(dcb) + rstd_c * (l.ld(dlb) - m1_c - l.ld(hat_c) * m2_c);
      } else {
        y = c;
        X dy_dc = one;
        if constexpr (v.out_tanh) {
          y = tanh_(c);
          dy_dc = one - y * y;
        }
        dct = l.ld(dcb) + dht * o * dy_dc;
      }
      if constexpr (v.has_o) {
        X d_o = dht * y;
        if constexpr (v.fgr) d_o += l.ld(dg3 + 2 * H);
        const X dao = d_o * o * (one - o);
        if constexpr (v.peep) {
          dct += dao * l.ld(po);
          l.st(dpo, l.ld(dpo) + dao * c);
        }
        l.st(dab + L.o, dao);
      }
      X dag = dct * i;
      if constexpr (v.cand_tanh) dag *= one - g * g;
      l.st(dab + L.g, dag);
      X dcp = dct * f;
      if constexpr (v.has_i) {
        X di = dct * g;
        if constexpr (v.coupled) di -= dct * c_prev;
        if constexpr (v.fgr) di += l.ld(dg3);
        const X dai = di * i * (one - i);
        if constexpr (v.peep) {
          dcp += dai * l.ld(pi);
          l.st(dpi, l.ld(dpi) + dai * c_prev);
        }
        l.st(dab + L.i, dai);
      }
      if constexpr (v.has_f && !v.coupled) {
        X df = dct * c_prev;
        if constexpr (v.fgr) df += l.ld(dg3 + H);
        const X daf = df * f * (one - f);
        if constexpr (v.peep) {
          dcp += daf * l.ld(pf);
          l.st(dpf, l.ld(dpf) + daf * c_prev);
        }
        l.st(dab + L.f, daf);
      }
      l.st(dcb, dcp);
      l.st(dhb, X{});
      if constexpr (v.fgr) {
        l.st(dg3, X{});
        l.st(dg3 + H, X{});
        l.st(dg3 + 2 * H, X{});
      }
    });
    if constexpr (LN) {  // back through LN(W_hh h): dA -> its gain/shift gradients, and the two sums
      const T* hat = ln.hat_hh + b * G;
      T* dg = ln.dhg + b * G;
#pragma GCC ivdep
      for (int64_t j = 0; j < G; ++j) {
        ln.dg_hh[b * G + j] += dab[j] * hat[j];
        ln.db_hh[b * G + j] += dab[j];
        dg[j] = dab[j] * ln.g_hh[j];
      }
      lane_sum_dot(dg, hat, G, ln.red[4 * b + 2], ln.red[4 * b + 3]);
    }
  }
  if constexpr (LN) {  // phase 3: d(W_hh h) from LN's backward, every row
    for (int64_t b = b0; b < b1; ++b) {
      if (mask && !mask[b]) continue;
      const T* hat = ln.hat_hh + b * G;
      T* dg = ln.dhg + b * G;
      const T rstd = ln.rstd_hh[b], m1 = ln.red[4 * b + 2] / T(G), m2 = ln.red[4 * b + 3] / T(G);
#pragma GCC ivdep
      for (int64_t j = 0; j < G; ++j) dg[j] = rstd * (dg[j] - m1 - hat[j] * m2);
    }
  }
}

// t is a contiguous CPU tensor (T, B, ·): the per-step tensors the loops walk with raw pointers.
void check_steps(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.dim() == 3 && t.is_contiguous(), "lstmkit cpu_fused: ", what,
              " must be a contiguous CPU tensor (T, B, ·), got ", t.sizes());
}

void check_dtype(at::ScalarType dt) {
  TORCH_CHECK(dt == at::kFloat || dt == at::kDouble, "lstmkit cpu_fused: dtype must be float32 or float64, got ", dt);
}

// t is a CPU tensor of dtype dt and the given shape (the kernels read raw pointers: a wrong shape would
// read past the end of a buffer instead of failing).
void expect(const at::Tensor& t, at::IntArrayRef shape, at::ScalarType dt, const char* what) {
  TORCH_CHECK(t.defined() && t.device().is_cpu() && t.scalar_type() == dt && t.sizes() == shape, "lstmkit cpu_fused: ",
              what, " must be a CPU ", dt, " tensor of shape ", shape, ", got ",
              t.defined() ? t.sizes() : at::IntArrayRef{}, " ", t.defined() ? t.scalar_type() : dt);
}

// The weights of a layer as the kernels read them, for T steps of B rows in dtype dt: W_hh (G, H), contiguous, with G
// the variant's gate rows, the peepholes (one row per gate that has one) and W_fgr (3H, 3H) exactly where
// the variant has them (empty otherwise), the mask (T, B) of bytes, layer norm's gains and shifts (G, G,
// H, H). Returns H.
int64_t check_layer(int64_t T, int64_t B, at::ScalarType dt, int64_t variant, const at::Tensor& w_hh,
                    const at::Tensor& w_peep, const at::Tensor& w_fgr, const at::Tensor& mask,
                    const std::vector<at::Tensor>& ln_w) {
  TORCH_CHECK(variant >= 0 && variant < kNumVariants, "lstmkit cpu_fused: unknown variant id ", variant);
  check_dtype(dt);
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.is_contiguous(), "lstmkit cpu_fused: W_hh must be a contiguous 2-d tensor (G, H)");
  const Flags& v = kVariants[variant];
  const int64_t H = w_hh.size(1);
  const Layout L = layout(v, H);
  expect(w_hh, {L.G, H}, dt, "W_hh");
  const int64_t n_peep = (L.pi >= 0) + (L.pf >= 0) + (L.po >= 0);
  if (v.peep)
    expect(w_peep, {n_peep, H}, dt, "the peephole weights");
  else
    TORCH_CHECK(!w_peep.defined() || w_peep.numel() == 0, "lstmkit cpu_fused: this variant has no peepholes");
  if (v.fgr)
    expect(w_fgr, {3 * H, 3 * H}, dt, "W_fgr");
  else
    TORCH_CHECK(!w_fgr.defined() || w_fgr.numel() == 0, "lstmkit cpu_fused: only FGR has W_fgr");
  if (mask.defined()) expect(mask, {T, B}, at::kByte, "the mask");
  TORCH_CHECK(ln_w.empty() || ln_w.size() == 4, "lstmkit cpu_fused: layer norm needs 4 tensors");
  if (!ln_w.empty()) {
    expect(ln_w[0], {L.G}, dt, "LN_hh's gain");
    expect(ln_w[1], {L.G}, dt, "LN_hh's shift");
    expect(ln_w[2], {H}, dt, "LN_c's gain");
    expect(ln_w[3], {H}, dt, "LN_c's shift");
  }
  return H;
}

// The input projection inside the time loop (inference: nothing saved, no layer norm): each thread
// multiplies its rows of x_t by W_ih^T, adding the bias as the tiles are stored, into a buffer of its own
// right before the step, instead of one (T, B, G) product beforehand. At B256 T100 H128 that tensor is
// 52 MB: glibc maps blocks over 32 MB afresh on every call, so it was page-faulted on first touch and then
// read back from memory (the product alone: 20 ms at two threads for 1.7 G multiply-adds).
template <typename T>
struct InputStep {
  const T* x = nullptr;  // (T, B, I)
  int64_t I = 0;
  Packed<T> w;  // W_ih^T, (I, G) packed
  const T* bias = nullptr;  // (G,) or none
};

template <typename T, int V, bool LN>
std::vector<at::Tensor> forward_impl(const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& c0,
                                     const at::Tensor& w_hh, const at::Tensor& w_peep, const at::Tensor& w_fgr,
                                     const at::Tensor& mask, const std::vector<at::Tensor>& ln_w, double eps,
                                     bool save, const InputStep<T>* in = nullptr) {
  constexpr Flags v = kVariants[V];
  // xg: (T, B, G) pre-activations from the input, or with `in` the input x itself (T, B, I)
  const int64_t T_ = xg.size(0), B = xg.size(1), H = h0.size(1);
  const int64_t G = layout(v, H).G;
  TORCH_CHECK((in || xg.size(2) == G) && w_hh.size(0) == G && w_hh.size(1) == H, "lstmkit cpu_fused: shapes");
  TORCH_CHECK(!in || (!save && !LN), "lstmkit cpu_fused: the fused input projection is for inference only");
  auto opts = xg.options();
  auto out = at::empty({T_, B, H}, opts);
  auto h = h0.contiguous().clone();
  // Saved for backward: every step's gate activations and c_{-1} … c_{T-1} (+ layer norm's statistics).
  auto acts = save ? at::empty({T_, B, G}, opts) : at::empty({B, G}, opts);
  auto c_all = save ? at::empty({T_ + 1, B, H}, opts) : c0.contiguous().clone();
  if (save) c_all[0].copy_(c0);
  const bool keep_ln = LN && save;
  // Without save, one step's worth of each, overwritten every step (the kernel always writes them).
  const int64_t T_ln = keep_ln ? T_ : 1;
  auto hat_hh = LN ? at::empty({T_ln, B, G}, opts) : at::empty({0}, opts);
  auto rstd_hh = LN ? at::empty({T_ln, B}, opts) : at::empty({0}, opts);
  auto hat_c = LN ? at::empty({T_ln, B, H}, opts) : at::empty({0}, opts);
  auto rstd_c = LN ? at::empty({T_ln, B}, opts) : at::empty({0}, opts);
  auto means = LN ? at::empty({2, B}, opts) : at::Tensor();
  auto r = v.fgr ? at::empty({B, 3 * H}, opts) : at::Tensor();
  // FGR's previous gates [i;f;o]_{t-1}: with save, every step's ((T+1, B, 3H), zeros first: the weight
  // gradient reads them as one matrix), else one step's, read by the product before being overwritten.
  // Every step writes every row of its slice (a finished row copies its previous gates): only the first is zeroed.
  auto gp = v.fgr ? at::empty({save ? T_ + 1 : 1, B, 3 * H}, opts) : at::Tensor();
  if (v.fgr) gp[0].zero_();
  const T* W = w_hh.data_ptr<T>();
  const T* Wf = v.fgr ? w_fgr.data_ptr<T>() : nullptr;
  const T* P = v.peep ? w_peep.data_ptr<T>() : nullptr;
  const uint8_t* M = mask.defined() ? mask.data_ptr<uint8_t>() : nullptr;
  T* hp = h.data_ptr<T>();
  T* rp = v.fgr ? r.data_ptr<T>() : nullptr;
  T* gpp = v.fgr ? gp.data_ptr<T>() : nullptr;
  const Recurrent<T> rec(W, G, H, /*transposed=*/true, /*one_row=*/B == 1);
  const Recurrent<T> rec_fgr(Wf, v.fgr ? 3 * H : 0, v.fgr ? 3 * H : 0, /*transposed=*/true, B == 1);
  const int64_t step_rows = step_grain(B, T_, G, H, rec.use_packed && (!v.fgr || rec_fgr.use_packed));
  LayerNorm<T> ln;
  if constexpr (LN) {
    ln.g_hh = ln_w[0].data_ptr<T>();
    ln.b_hh = ln_w[1].data_ptr<T>();
    ln.g_c = ln_w[2].data_ptr<T>();
    ln.b_c = ln_w[3].data_ptr<T>();
    ln.eps = T(eps);
    ln.mean_hh = means.data_ptr<T>();
    ln.mean_c = ln.mean_hh + B;
  }
  T* const acts_p = acts.data_ptr<T>();
  T* const c_all_p = c_all.data_ptr<T>();
  const T* const xg_p = xg.data_ptr<T>();
  T* const out_p = out.data_ptr<T>();
  T* const hat_hh_p = LN ? hat_hh.data_ptr<T>() : nullptr;
  T* const rstd_hh_p = LN ? rstd_hh.data_ptr<T>() : nullptr;
  T* const hat_c_p = LN ? hat_c.data_ptr<T>() : nullptr;
  T* const rstd_c_p = LN ? rstd_c.data_ptr<T>() : nullptr;
  // The rows of a batch never meet: each thread runs its rows through all T steps (one parallel
  // region per call, no synchronisation between steps).
  at::parallel_for(0, B, step_rows, [&](int64_t b0, int64_t b1) {
    std::vector<T> xbuf(in ? (b1 - b0) * G : 0);  // this thread's rows of W_ih x_t + bias
    for (int64_t t = 0; t < T_; ++t) {
      T* a = acts_p + (save ? t * B * G : 0);
      const T* c_in = c_all_p + (save ? t * B * H : 0);
      T* c_out = c_all_p + (save ? (t + 1) * B * H : 0);
      const T* x = xg_p + t * B * G;
      if (in) {
        gemm_packed<T>(b1 - b0, in->I, in->x + (t * B + b0) * in->I, in->I, 1, in->w, 0, xbuf.data(), G, false,
                       in->bias);
        x = xbuf.data() - b0 * G;  // step_forward reads row b at x + b * G
      }
      T* o = out_p + t * B * H;
      const uint8_t* m = M ? M + t * B : nullptr;
      LayerNorm<T> lt = ln;
      if constexpr (LN) {
        const int64_t tl = keep_ln ? t : 0;
        lt.hat_hh = hat_hh_p + tl * B * G;
        lt.rstd_hh = rstd_hh_p + tl * B;
        lt.hat_c = hat_c_p + tl * B * H;
        lt.rstd_c = rstd_c_p + tl * B;
      }
      rec.apply(b1 - b0, H, hp + b0 * H, H, 0, a + b0 * G, G, false);
      T* g_in = v.fgr ? gpp + (save ? t * B * 3 * H : 0) : nullptr;
      T* g_out = v.fgr ? gpp + (save ? (t + 1) * B * 3 * H : 0) : nullptr;
      if constexpr (v.fgr) rec_fgr.apply(b1 - b0, 3 * H, g_in + b0 * 3 * H, 3 * H, 0, rp + b0 * 3 * H, 3 * H, false);
      step_forward<T, V, LN>(b0, b1, H, a, x, rp, hp, c_in, c_out, g_in, g_out, o, m, P, lt);
    }
  });
  at::Tensor c_n = save ? c_all[T_].clone() : c_all;
  auto none = at::empty({0}, opts);
  auto gates = v.fgr && save ? gp : none;
  if (!keep_ln) return {out, h, c_n, save ? acts : none, save ? c_all : none, gates, none, none, none, none};
  return {out, h, c_n, save ? acts : none, save ? c_all : none, gates, hat_hh, rstd_hh, hat_c, rstd_c};
}

template <typename T, int V, bool LN>
std::vector<at::Tensor> backward_impl(const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& dc_n,
                                      const at::Tensor& acts, const at::Tensor& c_all, const at::Tensor& w_hh,
                                      const at::Tensor& w_peep, const at::Tensor& w_fgr, const at::Tensor& mask,
                                      const std::vector<at::Tensor>& ln_w, const std::vector<at::Tensor>& ln_saved) {
  constexpr Flags v = kVariants[V];
  const int64_t T_ = acts.size(0), B = acts.size(1), G = acts.size(2), H = c_all.size(2);
  auto opts = acts.options();
  auto da = at::empty({T_, B, G}, opts);
  auto dh = dh_n.contiguous().clone();
  auto dc = dc_n.contiguous().clone();
  auto dgc = v.fgr ? at::zeros({B, 3 * H}, opts) : at::Tensor();
  auto dout_c = dout.contiguous();
  auto dpeep = v.peep ? at::zeros({B, 3, H}, opts) : at::Tensor();
  T* dpp = v.peep ? dpeep.data_ptr<T>() : nullptr;
  const T* W = w_hh.data_ptr<T>();
  const T* Wf = v.fgr ? w_fgr.data_ptr<T>() : nullptr;
  const T* P = v.peep ? w_peep.data_ptr<T>() : nullptr;
  const uint8_t* M = mask.defined() ? mask.data_ptr<uint8_t>() : nullptr;
  T* dhp = dh.data_ptr<T>();
  T* dcp = dc.data_ptr<T>();
  T* dgp = v.fgr ? dgc.data_ptr<T>() : nullptr;
  const Layout L = layout(v, H);
  const Recurrent<T> rec(W, G, H, /*transposed=*/false, /*one_row=*/B == 1);
  const Recurrent<T> rec_fgr(Wf, v.fgr ? 3 * H : 0, v.fgr ? 3 * H : 0, /*transposed=*/false, B == 1);
  const int64_t step_rows = step_grain(B, T_, G, H, rec.use_packed && (!v.fgr || rec_fgr.use_packed));
  // Layer norm: d(W_hh h) per step (dW_hh sums it against h_{t-1}), per-row gain/shift gradient sums.
  auto dhg = LN ? at::empty({T_, B, G}, opts) : at::empty({0}, opts);
  auto sums_g = LN ? at::zeros({2, B, G}, opts) : at::Tensor();
  auto sums_h = LN ? at::zeros({2, B, H}, opts) : at::Tensor();
  auto rows = LN ? at::empty({2, B, H}, opts) : at::Tensor();
  auto red = LN ? at::empty({B, 4}, opts) : at::Tensor();
  LayerNorm<T> ln;
  if constexpr (LN) {
    ln.g_hh = ln_w[0].data_ptr<T>();
    ln.b_hh = ln_w[1].data_ptr<T>();
    ln.g_c = ln_w[2].data_ptr<T>();
    ln.b_c = ln_w[3].data_ptr<T>();
    ln.dg_hh = sums_g.data_ptr<T>();
    ln.db_hh = ln.dg_hh + B * G;
    ln.dg_c = sums_h.data_ptr<T>();
    ln.db_c = ln.dg_c + B * H;
    ln.y = rows.data_ptr<T>();
    ln.dc = ln.y + B * H;
    ln.red = red.data_ptr<T>();
  }
  T* const da_p = da.data_ptr<T>();
  const T* const acts_p = acts.data_ptr<T>();
  const T* const dout_p = dout_c.data_ptr<T>();
  const T* const c_all_p = c_all.data_ptr<T>();
  T* const dhg_p = LN ? dhg.data_ptr<T>() : nullptr;
  T* const saved_p[4] = {LN ? ln_saved[0].data_ptr<T>() : nullptr, LN ? ln_saved[1].data_ptr<T>() : nullptr,
                         LN ? ln_saved[2].data_ptr<T>() : nullptr, LN ? ln_saved[3].data_ptr<T>() : nullptr};
  // As the forward: each thread takes its rows through all steps, backwards.
  at::parallel_for(0, B, step_rows, [&](int64_t b0, int64_t b1) {
    for (int64_t t = T_ - 1; t >= 0; --t) {
      T* dat = da_p + t * B * G;
      const T* at_ = acts_p + t * B * G;
      const T* dot = dout_p + t * B * H;
      const T* cpt = c_all_p + t * B * H;
      const T* cnt = c_all_p + (t + 1) * B * H;
      const uint8_t* m = M ? M + t * B : nullptr;
      LayerNorm<T> lt = ln;
      if constexpr (LN) {
        lt.hat_hh = saved_p[0] + t * B * G;
        lt.rstd_hh = saved_p[1] + t * B;
        lt.hat_c = saved_p[2] + t * B * H;
        lt.rstd_c = saved_p[3] + t * B;
        lt.dhg = dhg_p + t * B * G;
      }
      step_backward<T, V, LN>(b0, b1, H, at_, dat, dot, dhp, dcp, dgp, cpt, cnt, m, P, dpp, lt);
      const int64_t n = b1 - b0;
      // dh_{t-1} += d(W_hh h)_t W_hh
      rec.apply(n, G, (LN ? lt.dhg : dat) + b0 * G, G, 0, dhp + b0 * H, H, true);
      if constexpr (v.fgr) {
        // d[i;f;o]_{t-1} += dA_{i,f} W_fgr[rows i,f] + dA_o W_fgr[rows o]  (rows of dA: i f g o)
        rec_fgr.apply(n, 2 * H, dat + b0 * G + L.i, G, 0, dgp + b0 * 3 * H, 3 * H, true);
        rec_fgr.apply(n, H, dat + b0 * G + L.o, G, 2 * H, dgp + b0 * 3 * H, 3 * H, true);
      }
    }
  });
  const int64_t n_peep = v.peep ? (int64_t)v.has_i + (int64_t)(v.has_f && !v.coupled) + (int64_t)v.has_o : 0;
  auto none = at::empty({0}, opts);
  auto dw_peep = v.peep ? dpeep.narrow(1, 0, n_peep).sum(0) : none;
  if constexpr (LN) {
    auto dg = sums_g.sum(1), dc_sums = sums_h.sum(1);
    return {da, dh, dc, dw_peep, dhg, dg[0], dg[1], dc_sums[0], dc_sums[1]};
  }
  return {da, dh, dc, dw_peep, dhg, none, none, none, none};
}

template <typename Fn>
auto dispatch_variant(int64_t variant, bool ln, Fn&& fn) {
  auto with = [&](auto V) {
    return ln ? fn(V, std::true_type{}) : fn(V, std::false_type{});
  };
  switch (variant) {
    case 0: return with(std::integral_constant<int, 0>{});
    case 1: return with(std::integral_constant<int, 1>{});
    case 2: return with(std::integral_constant<int, 2>{});
    case 3: return with(std::integral_constant<int, 3>{});
    case 4: return with(std::integral_constant<int, 4>{});
    case 5: return with(std::integral_constant<int, 5>{});
    case 6: return with(std::integral_constant<int, 6>{});
    case 7: return with(std::integral_constant<int, 7>{});
    default: return with(std::integral_constant<int, 8>{});
  }
}

std::vector<at::Tensor> contiguous_all(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> out;
  for (const auto& t : ts) out.push_back(t.contiguous());
  return out;
}

std::vector<at::Tensor> lstm_forward(const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& c0,
                                     const at::Tensor& w_hh, const at::Tensor& w_peep, const at::Tensor& w_fgr,
                                     const c10::optional<at::Tensor>& mask, int64_t variant,
                                     const std::vector<at::Tensor>& ln_w, double eps, bool save) {
  check_steps(xg, "xg");
  at::Tensor m = mask.has_value() ? mask->contiguous() : at::Tensor();
  const int64_t T = xg.size(0), B = xg.size(1), H = check_layer(T, B, xg.scalar_type(), variant, w_hh, w_peep, w_fgr, m, ln_w);
  expect(xg, {T, B, w_hh.size(0)}, xg.scalar_type(), "xg");
  expect(h0, {B, H}, xg.scalar_type(), "h0");
  expect(c0, {B, H}, xg.scalar_type(), "c0");
  at::Tensor wp = w_peep.contiguous(), wf = w_fgr.contiguous();
  auto lw = contiguous_all(ln_w);
  if (xg.scalar_type() == at::kFloat) {
    return dispatch_variant(variant, !lw.empty(), [&](auto V, auto LN) {
      return forward_impl<float, decltype(V)::value, decltype(LN)::value>(xg, h0, c0, w_hh, wp, wf, m, lw, eps, save);
    });
  }
  TORCH_CHECK(xg.scalar_type() == at::kDouble, "lstmkit cpu_fused: dtype must be float32 or float64");
  return dispatch_variant(variant, !lw.empty(), [&](auto V, auto LN) {
    return forward_impl<double, decltype(V)::value, decltype(LN)::value>(xg, h0, c0, w_hh, wp, wf, m, lw, eps, save);
  });
}

// Inference from the input: the projection W_ih x_t + bias inside the time loop (InputStep); no layer norm,
// nothing saved. Returns what lstm_forward returns without save.
std::vector<at::Tensor> lstm_forward_input(const at::Tensor& x, const at::Tensor& w_ih,
                                           const c10::optional<at::Tensor>& bias, const at::Tensor& h0,
                                           const at::Tensor& c0, const at::Tensor& w_hh, const at::Tensor& w_peep,
                                           const at::Tensor& w_fgr, const c10::optional<at::Tensor>& mask,
                                           int64_t variant) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 3, "lstmkit cpu_fused: x must be a CPU tensor (T, B, I)");
  auto xc = x.contiguous(), wc = w_ih.contiguous(), whh = w_hh.contiguous();
  at::Tensor bc = bias.has_value() && bias->numel() ? bias->contiguous() : at::Tensor();
  TORCH_CHECK(!bc.defined() || bc.numel() == w_ih.size(0), "lstmkit cpu_fused: forward_input bias size");
  at::Tensor m = mask.has_value() ? mask->contiguous() : at::Tensor();
  const int64_t B = x.size(1), H = check_layer(x.size(0), B, x.scalar_type(), variant, whh, w_peep, w_fgr, m, {});
  expect(w_ih, {whh.size(0), x.size(2)}, x.scalar_type(), "W_ih");
  expect(h0, {B, H}, x.scalar_type(), "h0");
  expect(c0, {B, H}, x.scalar_type(), "c0");
  at::Tensor wp = w_peep.contiguous(), wf = w_fgr.contiguous();
  auto run = [&](auto tag) {
    using T = decltype(tag);
    InputStep<T> in;
    in.x = xc.data_ptr<T>();
    in.I = xc.size(2);
    in.w = pack<T>(wc.data_ptr<T>(), in.I, wc.size(0), 1, in.I);  // W_ih^T: (I, G)
    in.bias = bc.defined() ? bc.data_ptr<T>() : nullptr;
    return dispatch_variant(variant, false, [&](auto V, auto) {
      return forward_impl<T, decltype(V)::value, false>(xc, h0, c0, whh, wp, wf, m, {}, 1e-5, false, &in);
    });
  };
  if (x.scalar_type() == at::kFloat) return run(float{});
  TORCH_CHECK(x.scalar_type() == at::kDouble, "lstmkit cpu_fused: dtype must be float32 or float64");
  return run(double{});
}

// a^T b for a (K, M), b (K, N): the weight gradients summed over all steps (K = T·B), e.g. dW_hh =
// dA^T h_prev. b is packed (N padded to whole vectors); a is read transposed in place. Only some of a's
// columns may be wanted (FGR's dW_fgr takes dA's i, f and o columns, not g): given as ranges, they are the
// output's rows in order, all multiplied by one packing of b.
//
// The sum over K runs in blocks of kTnBlock rows: each block of b is packed and multiplied by every row
// tile of C while it and a's block sit in L2 (packing all of K first: dW_fgr's i, f rows at the seed's
// size, K = 1600, b packed to 1.1 MB, 311 vs 261-277 us on one thread).
constexpr int64_t kTnBlock = 256;

struct ColRange {
  int64_t start, stop;
};

template <typename T>
void tn_rows(int64_t k0, int64_t k1, const std::vector<ColRange>& cols, int64_t N, const T* A, int64_t lda,
             const T* Bm, T* C) {
  for (int64_t kb = k0; kb < k1; kb += kTnBlock) {
    const int64_t kn = std::min(kTnBlock, k1 - kb);
    const Packed<T> P = pack<T>(Bm + kb * N, kn, N, N, 1);
    int64_t row = 0;
    for (const ColRange& r : cols) {
      gemm_packed<T>(r.stop - r.start, kn, A + kb * lda + r.start, 1, lda, P, 0, C + row * N, N, /*accumulate=*/kb > k0);
      row += r.stop - r.start;
    }
  }
}

// C (M, N) = the sum over k < K of rows(k0, k1, C_part), rows adding its range of k into C_part (writing
// it on its first block): with several threads each sums its own range of K into a partial, then the
// partials are added. Splitting M instead left each thread packing all of b and only a few 12-row tiles to
// share (M = 3H or 4H). The first range sums straight into C. zero: C starts at zero (rows may add into
// it, or leave some of it unwritten). Threads only from min_work multiply-adds and min_k rows each.
template <typename T, typename Rows>
at::Tensor sum_over_k(int64_t K, int64_t M, int64_t N, const at::TensorOptions& opts, bool zero, Rows rows,
                      int64_t min_k = 256, int64_t min_work = (int64_t)1 << 22) {
  auto out = zero ? at::zeros({M, N}, opts) : at::empty({M, N}, opts);
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), K / min_k);
  if (threads < 2 || M * K * N < min_work) {
    if (K == 0) return out.zero_();
    rows(0, K, out.data_ptr<T>());
    return out;
  }
  auto partial = zero ? at::zeros({threads - 1, M, N}, opts) : at::empty({threads - 1, M, N}, opts);
  T* Pp = partial.data_ptr<T>();
  T* Op = out.data_ptr<T>();
  at::parallel_for(0, threads, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) rows(K * c / threads, K * (c + 1) / threads, c == 0 ? Op : Pp + (c - 1) * M * N);
  });
  out.add_(threads == 2 ? partial[0] : partial.sum(0));
  return out;
}

template <typename T>
at::Tensor matmul_tn_impl(const at::Tensor& a, const at::Tensor& b, const std::vector<ColRange>& cols) {
  const int64_t K = a.size(0), N = b.size(1), lda = a.stride(0);
  int64_t M = 0;
  for (const ColRange& r : cols) M += r.stop - r.start;
  const T* A = a.data_ptr<T>();
  const T* Bm = b.data_ptr<T>();
  return sum_over_k<T>(K, M, N, a.options(), false,
                       [&](int64_t k0, int64_t k1, T* C) { tn_rows<T>(k0, k1, cols, N, A, lda, Bm, C); });
}

// A layer's weight gradients from one pass over dA (without layer norm, where they all read dA): with
// the rows b_k = [h_{t-1} | x_k | 1 | [i;f;o]_{t-1}] (k = (t, b); each part only where its gradient is
// wanted: a frozen weight drops its columns), C = dA^T b holds dW_hh, dW_ih, the biases' gradient and
// FGR's dW_fgr (the i, f and o rows of the gate-history columns; the g rows stop before them).
// x joins where that takes fewer vectors a row than separate products (at the seed's size, H = I = 50:
// 7 instead of 4 + 4; a univariate series' x fills h's padding), the 1 only where it fits into the
// padding (else the biases' gradient is a column sum of dA). Joined at the same count of vectors, the
// product was 5-15 % slower (H = I = 256 and 768: its larger C streams through once per block of K).
struct GradCols {
  int64_t H, I, one, F;  // widths: h_{t-1} (0/H), x (0/I), the bias column (0/1), the gate history (0/3H)
  int64_t base() const { return H + I + one; }
  int64_t N() const { return base() + F; }
};

template <typename T>
GradCols grad_cols(int64_t H, int64_t I, bool bias, int64_t F) {
  constexpr int64_t W = 64 / sizeof(T);
  auto vecs = [](int64_t n) { return (n + W - 1) / W; };
  if (H && vecs(H + I) == vecs(H) + vecs(I)) I = 0;
  return GradCols{H, I, bias && vecs(H + I + 1) == vecs(H + I) ? 1 : 0, F};
}

template <typename T>
void layer_grads_rows(int64_t k0, int64_t k1, const T* da, int64_t G, const T* h0, const T* out, const T* x,
                      const T* gates, int64_t B, int64_t H, const GradCols& c, const Layout& L, T* C) {
  const int64_t N = c.N();
  for (int64_t kb = k0; kb < k1; kb += kTnBlock) {
    const int64_t kn = std::min(kTnBlock, k1 - kb);
    Packed<T> P = packed_shape<T>(kn, N);
    for (int64_t k = 0; k < kn; ++k) {
      const int64_t row = kb + k, t = row / B, b = row % B;
      T* p = P.data.data() + k * P.Np;
      if (c.H) std::memcpy(p, t == 0 ? h0 + b * H : out + (row - B) * H, H * sizeof(T));
      if (c.I) std::memcpy(p + c.H, x + row * c.I, c.I * sizeof(T));
      if (c.one) p[c.H + c.I] = T(1);
      if (c.F) std::memcpy(p + c.base(), gates + row * c.F, c.F * sizeof(T));
    }
    const T* A = da + kb * G;
    const bool acc = kb > k0;
    if (c.F) {
      gemm_packed<T>(2 * H, kn, A + L.i, 1, G, P, 0, C + L.i * N, N, acc);  // the i and f rows (adjacent)
      gemm_packed<T>(H, kn, A + L.o, 1, G, P, 0, C + L.o * N, N, acc);
      P.N = c.base();
      if (P.N) gemm_packed<T>(H, kn, A + L.g, 1, G, P, 0, C + L.g * N, N, acc);
    } else {
      gemm_packed<T>(G, kn, A, 1, G, P, 0, C, N, acc);
    }
  }
}

struct LayerGrads {
  at::Tensor w_hh, w_ih, bias, w_fgr;  // undefined where not wanted
};

at::Tensor weight_grad(const at::Tensor& a, const at::Tensor& b, const std::vector<ColRange>& cols);

// A layout for layer_grads without FGR (the GRU's, the RNN's): it is read only for the gate history.
const Layout kNoGateHistory{-1, -1, -1, -1, 0, -1, -1, -1};

// From dA (T, B, G), h0 (B, H), the outputs (T, B, H), x (T·B, I) and FGR's gate history ((T + 1, B, 3H),
// zeros first), all contiguous; x and the history may be undefined where not wanted. Every wanted gradient
// comes back: W_ih's and the biases' from their own product and a column sum of dA where grad_cols left
// them out of the joint one.
LayerGrads layer_grads(const at::Tensor& da, const at::Tensor& h0, const at::Tensor& out, const at::Tensor& x,
                       const at::Tensor& gates, bool w_hh, bool w_ih, bool bias, bool w_fgr,
                       const Layout& L = kNoGateHistory) {
  const int64_t B = da.size(1), G = da.size(2), H = h0.size(1), K = da.size(0) * B;
  const int64_t Hc = w_hh ? H : 0, I = w_ih ? x.size(1) : 0, F = w_fgr ? 3 * H : 0;
  const GradCols c = da.scalar_type() == at::kFloat ? grad_cols<float>(Hc, I, bias, F) : grad_cols<double>(Hc, I, bias, F);
  LayerGrads r;
  const at::Tensor d2 = da.view({K, G});
  if (w_ih && !c.I) r.w_ih = weight_grad(d2, x, {{0, G}});
  if (bias && !c.one) r.bias = d2.sum(0);
  if (c.N() == 0) return r;
  at::Tensor C;
  AT_DISPATCH_FLOATING_TYPES(da.scalar_type(), "layer_grads", [&] {
    const scalar_t *dp = da.data_ptr<scalar_t>(), *hp = h0.data_ptr<scalar_t>(), *op = out.data_ptr<scalar_t>();
    const scalar_t* xp = c.I ? x.data_ptr<scalar_t>() : nullptr;
    const scalar_t* gp = c.F ? gates.data_ptr<scalar_t>() : nullptr;
    // zero: with FGR the g rows leave the gate-history columns unwritten
    C = sum_over_k<scalar_t>(K, G, c.N(), da.options(), /*zero=*/c.F > 0, [&](int64_t k0, int64_t k1, scalar_t* part) {
      layer_grads_rows<scalar_t>(k0, k1, dp, G, hp, op, xp, gp, B, H, c, L, part);
    });
  });
  if (c.H) r.w_hh = C.narrow(1, 0, H).contiguous();
  if (c.I) r.w_ih = C.narrow(1, c.H, c.I).contiguous();
  if (c.one) r.bias = C.select(1, c.H + c.I).contiguous();
  if (c.F) r.w_fgr = at::cat({C.narrow(0, L.i, 2 * H), C.narrow(0, L.o, H)}).narrow(1, c.base(), c.F).contiguous();
  return r;
}

template <typename T>
at::Tensor matmul_impl(const at::Tensor& a, const at::Tensor& w, bool transposed, const at::Tensor& bias);

// dx = d W_ih for the gradient d (rows, G) of W_ih x: the packed kernel, or the BLAS for fewer than 16 input
// features (padded to a whole vector, the packed product would mostly multiply zeros).
at::Tensor input_grad(const at::Tensor& d, const at::Tensor& w_ih) {
  const at::Tensor w = w_ih.contiguous();
  if (w.size(1) < 16) return d.mm(w);
  return d.scalar_type() == at::kFloat ? matmul_impl<float>(d, w, false, at::Tensor())
                                       : matmul_impl<double>(d, w, false, at::Tensor());
}

// A weight gradient a[:, cols]^T b summed over all steps (cols: a's column ranges): the packed kernel
// (measured about twice MKL's speed from K = 1600, M = 200, N = 50 to K = 25600, M = 512, N = 128). b
// narrower than 16 columns (H < 16, or W_ih's gradient for a few input features) would be padded to a
// whole vector: then (b^T a[:, cols])^T (MKL's a^T b is slow there), and one column by the BLAS.
at::Tensor weight_grad(const at::Tensor& a, const at::Tensor& b, const std::vector<ColRange>& cols) {
  auto tn = [](const at::Tensor& x, const at::Tensor& y, const std::vector<ColRange>& c) {
    return x.scalar_type() == at::kFloat ? matmul_tn_impl<float>(x, y, c) : matmul_tn_impl<double>(x, y, c);
  };
  if (b.size(1) >= 16) return tn(a, b, cols);
  std::vector<at::Tensor> parts;
  for (const ColRange& r : cols) {
    auto ar = a.narrow(1, r.start, r.stop - r.start);
    parts.push_back(b.size(1) == 1 ? ar.t().mm(b) : tn(b, ar.contiguous(), {{0, b.size(1)}}).t());
  }
  return (parts.size() == 1 ? parts[0] : at::cat(parts)).contiguous();
}

std::vector<at::Tensor> lstm_backward(const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& dc_n,
                                      const at::Tensor& acts, const at::Tensor& c_all, const at::Tensor& w_hh,
                                      const at::Tensor& w_peep, const at::Tensor& w_fgr,
                                      const c10::optional<at::Tensor>& mask, int64_t variant,
                                      const std::vector<at::Tensor>& ln_w, const std::vector<at::Tensor>& ln_saved,
                                      const at::Tensor& h0, const at::Tensor& out, const at::Tensor& gates,
                                      bool need_dw_hh, bool need_dw_fgr, const at::Tensor& x_in,
                                      const at::Tensor& w_ih, bool need_dx, bool need_dw_ih, bool need_db) {
  check_steps(acts, "the saved gates");
  TORCH_CHECK(ln_w.size() == ln_saved.size() && (ln_w.empty() || ln_w.size() == 4), "lstmkit cpu_fused: layer norm");
  at::Tensor m = mask.has_value() ? mask->contiguous() : at::Tensor();
  {
    const at::ScalarType dt = acts.scalar_type();
    const int64_t T = acts.size(0), B = acts.size(1), G = w_hh.size(0);
    const int64_t H = check_layer(T, B, dt, variant, w_hh, w_peep, w_fgr, m, ln_w);
    expect(acts, {T, B, G}, dt, "the saved gates");
    expect(c_all, {T + 1, B, H}, dt, "the saved cell states");
    expect(dout, {T, B, H}, dt, "the output's gradient");
    expect(dh_n, {B, H}, dt, "h_n's gradient");
    expect(dc_n, {B, H}, dt, "c_n's gradient");
    if (need_dw_hh || kVariants[variant].fgr || x_in.numel()) {  // the weight gradients read h_{t-1}
      expect(h0, {B, H}, dt, "h0");
      expect(out, {T, B, H}, dt, "the outputs");
    }
    if (!ln_w.empty()) {
      expect(ln_saved[0], {T, B, G}, dt, "LN_hh's saved normalised values");
      expect(ln_saved[1], {T, B}, dt, "LN_hh's saved 1/std");
      expect(ln_saved[2], {T, B, H}, dt, "LN_c's saved normalised values");
      expect(ln_saved[3], {T, B}, dt, "LN_c's saved 1/std");
    }
    if (x_in.defined() && x_in.numel()) {
      TORCH_CHECK(x_in.dim() == 2, "lstmkit cpu_fused: x must be 2-d (T·B, I)");
      expect(x_in, {T * B, x_in.size(1)}, dt, "x");
      expect(w_ih, {G, x_in.size(1)}, dt, "W_ih");
    }
  }
  at::Tensor wp = w_peep.contiguous(), wf = w_fgr.contiguous();
  auto lw = contiguous_all(ln_w), ls = contiguous_all(ln_saved);
  std::vector<at::Tensor> res;
  if (acts.scalar_type() == at::kFloat) {
    res = dispatch_variant(variant, !lw.empty(), [&](auto V, auto LN) {
      return backward_impl<float, decltype(V)::value, decltype(LN)::value>(dout, dh_n, dc_n, acts, c_all, w_hh, wp,
                                                                           wf, m, lw, ls);
    });
  } else {
    res = dispatch_variant(variant, !lw.empty(), [&](auto V, auto LN) {
      return backward_impl<double, decltype(V)::value, decltype(LN)::value>(dout, dh_n, dc_n, acts, c_all, w_hh, wp,
                                                                            wf, m, lw, ls);
    });
  }
  // The weight gradients as single products over all steps (masked rows have dA = 0): dW_hh =
  // sum_t d(W_hh h)_t^T h_{t-1}, FGR's dW_fgr = sum_t dA_{ifo,t}^T [i;f;o]_{t-1} from the forward's [i;f;o]
  // history ((T+1, B, 3H), zeros first), and when the node includes the input projection (x_in (T·B, I)
  // given) dW_ih = dA^T x and the biases' column sums of dA. Without layer norm all read dA: one product
  // (layer_grads). With it dW_hh reads d(W_hh h) through LN_hh, and W_ih's and the biases' gradients come
  // from the input norm's backward (LayerFunction).
  const int64_t T_ = acts.size(0), B = acts.size(1), G = acts.size(2), H = c_all.size(2);
  const at::Tensor da = res[0];  // a handle, not a reference: res grows below
  auto none = at::empty({0}, acts.options());
  at::Tensor dw_hh = none, dw_fgr = none, dx = none, dw_ih = none, db = none;
  const bool has_x = x_in.defined() && x_in.numel();
  const Layout L = layout(kVariants[variant], H);
  if (need_dw_fgr) {
    TORCH_CHECK(kVariants[variant].fgr, "lstmkit cpu_fused: only FGR has W_fgr");
    expect(gates, {T_ + 1, B, 3 * H}, acts.scalar_type(), "FGR's gate history (the forward's)");
  }
  if (lw.empty()) {
    LayerGrads g = layer_grads(da, h0.contiguous(), out.contiguous(), has_x ? x_in.contiguous() : at::Tensor(),
                               need_dw_fgr ? gates.contiguous() : at::Tensor(), need_dw_hh, has_x && need_dw_ih,
                               has_x && need_db, need_dw_fgr, L);
    if (need_dw_hh) dw_hh = g.w_hh;
    if (need_dw_fgr) dw_fgr = g.w_fgr;
    if (has_x && need_dw_ih) dw_ih = g.w_ih;
    if (has_x && need_db) db = g.bias;
  } else {
    if (need_dw_hh) {
      // h_{t-1} is h0 for the first step and the output before: two products, not one over a copy of
      // every h (at the seed's size the copy took as long as a fifth of the product).
      const at::Tensor d = res[4].view({T_ * B, G});
      dw_hh = weight_grad(d.narrow(0, 0, B), h0.contiguous(), {{0, G}});
      if (T_ > 1)
        dw_hh.add_(weight_grad(d.narrow(0, B, (T_ - 1) * B), out.narrow(0, 0, T_ - 1).reshape({(T_ - 1) * B, H}),
                               {{0, G}}));
    }
    if (need_dw_fgr)
      dw_fgr = weight_grad(da.view({T_ * B, G}), gates.narrow(0, 0, T_).reshape({T_ * B, 3 * H}),
                           {{L.i, L.f + H}, {L.o, L.o + H}});
  }
  res.push_back(dw_hh);
  res.push_back(dw_fgr);
  if (has_x && need_dx) dx = input_grad(da.view({T_ * B, G}), w_ih);
  res.push_back(dx);
  res.push_back(dw_ih);
  res.push_back(db);
  return res;
}

// a (M, K) @ op(w) (+ bias): op(w) = w^T for w (N, K) (a linear layer), else w (K, N). The input
// projection of all steps (M = T·B) and its input gradient: at the sizes of an LSTM layer the packed
// kernel beats the BLAS call (measured: ~3x at M = 1600, K = 50, N = 200 with AVX-512).
template <typename T>
at::Tensor matmul_impl(const at::Tensor& a, const at::Tensor& w, bool transposed, const at::Tensor& bias) {
  const int64_t M = a.size(0), K = a.size(1);
  const int64_t N = transposed ? w.size(0) : w.size(1);
  TORCH_CHECK((transposed ? w.size(1) : w.size(0)) == K, "lstmkit cpu_fused: matmul shapes");
  auto out = at::empty({M, N}, a.options());
  const T* b = bias.defined() && bias.numel() ? bias.data_ptr<T>() : nullptr;
  TORCH_CHECK(!b || bias.numel() == N, "lstmkit cpu_fused: matmul bias size");
  const Recurrent<T> op(w.data_ptr<T>(), w.size(0), w.size(1), transposed);
  if (op.use_packed) {  // the bias added as the tiles are stored (not a separate pass over the output)
    gemm_packed<T>(M, K, a.data_ptr<T>(), K, 1, op.packed, 0, out.data_ptr<T>(), N, false, b);
  } else {
    if (b) out.copy_(bias.unsqueeze(0).expand({M, N}));
    op.apply(M, K, a.data_ptr<T>(), K, 0, out.data_ptr<T>(), N, b != nullptr);
  }
  return out;
}

at::Tensor matmul(const at::Tensor& a, const at::Tensor& w, bool transposed, const c10::optional<at::Tensor>& bias) {
  auto ac = a.contiguous(), wc = w.contiguous();
  at::Tensor bc = bias.has_value() ? bias->contiguous() : at::Tensor();
  TORCH_CHECK(ac.dim() == 2 && wc.dim() == 2 && ac.scalar_type() == wc.scalar_type(), "lstmkit cpu_fused: matmul");
  if (ac.scalar_type() == at::kFloat) return matmul_impl<float>(ac, wc, transposed, bc);
  TORCH_CHECK(ac.scalar_type() == at::kDouble, "lstmkit cpu_fused: dtype must be float32 or float64");
  return matmul_impl<double>(ac, wc, transposed, bc);
}

// a[:, cols]^T b by weight_grad (the packed kernel, or for b narrower than 16 columns the product the other
// way round). a may be a column slice (rows strided, columns contiguous), e.g. some gates' columns of dA;
// cols, when not empty, lists the columns of a to use as [start, stop) pairs (the output's rows, in order).
at::Tensor matmul_tn(const at::Tensor& a, const at::Tensor& b, const std::vector<int64_t>& cols) {
  auto ac = a.dim() == 2 && a.stride(1) == 1 && a.stride(0) >= a.size(1) ? a : a.contiguous();
  auto bc = b.contiguous();
  TORCH_CHECK(ac.dim() == 2 && bc.dim() == 2 && ac.size(0) == bc.size(0) && ac.scalar_type() == bc.scalar_type(),
              "lstmkit cpu_fused: matmul_tn shapes");
  TORCH_CHECK(cols.size() % 2 == 0, "lstmkit cpu_fused: matmul_tn column ranges come in pairs");
  std::vector<ColRange> ranges;
  for (size_t i = 0; i < cols.size(); i += 2) {
    TORCH_CHECK(0 <= cols[i] && cols[i] <= cols[i + 1] && cols[i + 1] <= ac.size(1),
                "lstmkit cpu_fused: matmul_tn column range [", cols[i], ", ", cols[i + 1], ") outside a's ",
                ac.size(1), " columns");
    ranges.push_back({cols[i], cols[i + 1]});
  }
  if (cols.empty()) ranges.push_back({0, ac.size(1)});
  TORCH_CHECK(ac.scalar_type() == at::kFloat || ac.scalar_type() == at::kDouble,
              "lstmkit cpu_fused: dtype must be float32 or float64");
  return weight_grad(ac, bc, ranges);
}

// The input projection's layer norm, LN(W_ih x; g, b) + bias, over the G columns of each row of xw
// (N, G), N = T·B, in one pass per row (torch's layer_norm, then a separate bias add, cost about 3x).
// Returns y and each row's mean and 1/std for the backward.
template <typename T>
std::vector<at::Tensor> input_ln_impl(const at::Tensor& xw, const at::Tensor& g, const at::Tensor& b,
                                      const at::Tensor& bias, double eps) {
  const int64_t N = xw.size(0), G = xw.size(1);
  auto y = at::empty({N, G}, xw.options());
  auto stats = at::empty({2, N}, xw.options());
  const T* X = xw.data_ptr<T>();
  const T* gp = g.data_ptr<T>();
  const T* bp = b.data_ptr<T>();
  const T* cp = bias.numel() ? bias.data_ptr<T>() : nullptr;
  T* Y = y.data_ptr<T>();
  T* mean_p = stats.data_ptr<T>();
  T* rstd_p = mean_p + N;
  const T e = T(eps);
  at::parallel_for(0, N, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* x = X + r * G;
      T* yr = Y + r * G;
      T mean, rstd;
      moments(x, G, e, mean, rstd);
      mean_p[r] = mean;
      rstd_p[r] = rstd;
      if (cp) {
#pragma GCC ivdep
        for (int64_t j = 0; j < G; ++j) yr[j] = (gp[j] * ((x[j] - mean) * rstd) + bp[j]) + cp[j];
      } else {
#pragma GCC ivdep
        for (int64_t j = 0; j < G; ++j) yr[j] = gp[j] * ((x[j] - mean) * rstd) + bp[j];
      }
    }
  });
  return {y, stats};
}

std::vector<at::Tensor> input_ln(const at::Tensor& xw, const at::Tensor& g, const at::Tensor& b,
                                 const at::Tensor& bias, double eps) {
  auto xc = xw.contiguous(), gc = g.contiguous(), bc = b.contiguous(), cc = bias.contiguous();
  TORCH_CHECK(xc.dim() == 2 && gc.numel() == xc.size(1) && bc.numel() == xc.size(1) &&
              (cc.numel() == 0 || cc.numel() == xc.size(1)), "lstmkit cpu_fused: input_ln shapes");
  if (xc.scalar_type() == at::kFloat) return input_ln_impl<float>(xc, gc, bc, cc, eps);
  TORCH_CHECK(xc.scalar_type() == at::kDouble, "lstmkit cpu_fused: dtype must be float32 or float64");
  return input_ln_impl<double>(xc, gc, bc, cc, eps);
}

// Its backward: dxw (N, G), and the gain and shift gradients (G) (the shift's is also the bias's),
// summed per chunk of rows (one buffer per chunk, so that threads never share one) and then over chunks.
template <typename T>
std::vector<at::Tensor> input_ln_backward_impl(const at::Tensor& dy, const at::Tensor& xw, const at::Tensor& stats,
                                               const at::Tensor& g) {
  const int64_t N = xw.size(0), G = xw.size(1);
  constexpr int64_t R = 256;
  const int64_t chunks = std::max<int64_t>(1, (N + R - 1) / R);
  auto dx = at::empty({N, G}, xw.options());
  auto part = at::zeros({chunks, 2, G}, xw.options());
  auto row = at::empty({chunks, G}, xw.options());
  const T* DY = dy.data_ptr<T>();
  const T* X = xw.data_ptr<T>();
  const T* mean_p = stats.data_ptr<T>();
  const T* rstd_p = mean_p + N;
  const T* gp = g.data_ptr<T>();
  T* DX = dx.data_ptr<T>();
  T* P = part.data_ptr<T>();
  T* RW = row.data_ptr<T>();
  at::parallel_for(0, chunks, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      T* dg = P + k * 2 * G;
      T* db = dg + G;
      T* hat = RW + k * G;
      for (int64_t r = k * R; r < std::min(N, (k + 1) * R); ++r) {
        const T* x = X + r * G;
        const T* d = DY + r * G;
        T* o = DX + r * G;
        const T mean = mean_p[r], rstd = rstd_p[r];
#pragma GCC ivdep
        for (int64_t j = 0; j < G; ++j) {
          const T h = (x[j] - mean) * rstd;
          hat[j] = h;
          dg[j] += d[j] * h;
          db[j] += d[j];
          o[j] = d[j] * gp[j];
        }
        T m1, m2;
        lane_sum_dot(o, hat, G, m1, m2);
        m1 /= T(G);
        m2 /= T(G);
#pragma GCC ivdep
        for (int64_t j = 0; j < G; ++j) o[j] = rstd * (o[j] - m1 - hat[j] * m2);
      }
    }
  });
  auto sums = chunks == 1 ? part[0] : part.sum(0);
  return {dx, sums[0], sums[1]};
}

std::vector<at::Tensor> input_ln_backward(const at::Tensor& dy, const at::Tensor& xw, const at::Tensor& stats,
                                          const at::Tensor& g) {
  auto dc = dy.contiguous(), xc = xw.contiguous(), sc = stats.contiguous(), gc = g.contiguous();
  TORCH_CHECK(dc.sizes() == xc.sizes() && xc.dim() == 2 && sc.numel() == 2 * xc.size(0), "lstmkit cpu_fused: "
              "input_ln_backward shapes");
  if (xc.scalar_type() == at::kFloat) return input_ln_backward_impl<float>(dc, xc, sc, gc);
  TORCH_CHECK(xc.scalar_type() == at::kDouble, "lstmkit cpu_fused: dtype must be float32 or float64");
  return input_ln_backward_impl<double>(dc, xc, sc, gc);
}

bool uses_blas() { return have_blas<float>() && have_blas<double>(); }

}  // namespace

// ------------------------------------------------------------------------------------------ GRU and RNN
// The time loop of a cell whose state is h alone (the GRU, the Elman RNN): each thread takes its rows
// [b0, b1) through every step: pre = h_{t-1} W_hh^T for its rows (G columns, the packed kernel), then
// cell(t, b, pre row, h row, output row) on each active row (updating h in place); a row past its
// sequence's end keeps its state and outputs zeros.
template <typename T, typename Cell>
void state_forward(int64_t T_, int64_t B, int64_t G, int64_t H, const Recurrent<T>& rec, const uint8_t* M, T* hp,
                   T* pp, T* op, Cell cell) {
  at::parallel_for(0, B, step_grain(B, T_, G, H, rec.use_packed), [&](int64_t b0, int64_t b1) {
    for (int64_t t = 0; t < T_; ++t) {
      rec.apply(b1 - b0, H, hp + b0 * H, H, 0, pp + b0 * G, G, false);
      const uint8_t* m = M ? M + t * B : nullptr;
      for (int64_t b = b0; b < b1; ++b) {
        T* ob = op + (t * B + b) * H;
        if (m && !m[b]) {
          std::memset(ob, 0, H * sizeof(T));
          continue;
        }
        cell(t, b, pp + b * G, hp + b * H, ob);
      }
    }
  });
}

// Its backward: per step (from the last) cell(t, b, active) on each row writes the row's gradient of pre
// into da (T, B, G) (zeros on a frozen row, whose dh passes through) and leaves dh as the part that does
// not go through W_hh; then dh_{t-1} += da_t W_hh for the thread's rows.
template <typename T, typename Cell>
void state_backward(int64_t T_, int64_t B, int64_t G, int64_t H, const Recurrent<T>& rec, const uint8_t* M, T* dap,
                    T* dhp, Cell cell) {
  at::parallel_for(0, B, step_grain(B, T_, G, H, rec.use_packed), [&](int64_t b0, int64_t b1) {
    for (int64_t t = T_ - 1; t >= 0; --t) {
      const uint8_t* m = M ? M + t * B : nullptr;
      for (int64_t b = b0; b < b1; ++b) cell(t, b, !m || m[b]);
      rec.apply(b1 - b0, G, dap + (t * B + b0) * G, G, 0, dhp + b0 * H, H, true);
    }
  });
}

// GRU
// torch's GRU (cells.gru_step; gates r, z, n): per step A = h_{t-1} W_hh^T + b_hh (one product, the
// packed kernel), r = σ(x_r + A_r), z = σ(x_z + A_z), n = tanh(x_n + r ⊙ A_n), h_t = n + z ⊙ (h_{t-1} − n),
// with x = W_ih x_t + b_ih from one product before the loop (autograd's, in cpu_fused.py). Each thread
// takes its rows through every step, as the LSTM's loop. Saved for backward: r, z, n and A_n per step.
template <typename T>
std::vector<at::Tensor> gru_forward_impl(const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& w_hh,
                                         const at::Tensor& b_hh, const at::Tensor& mask, bool save) {
  const int64_t T_ = xg.size(0), B = xg.size(1), G = xg.size(2), H = G / 3;
  auto opts = xg.options();
  auto out = at::empty({T_, B, H}, opts);
  auto h = h0.contiguous().clone();
  auto pre = at::empty({B, G}, opts);
  auto acts = save ? at::empty({T_, B, G}, opts) : at::empty({B, G}, opts);
  auto hn_all = save ? at::empty({T_, B, H}, opts) : at::empty({B, H}, opts);
  auto bias = b_hh.numel() ? b_hh.contiguous() : at::zeros({G}, opts);
  const Recurrent<T> rec(w_hh.data_ptr<T>(), G, H, /*transposed=*/true, /*one_row=*/B == 1);
  const T* xp = xg.data_ptr<T>();
  const T* bp = bias.data_ptr<T>();
  const uint8_t* M = mask.defined() ? mask.data_ptr<uint8_t>() : nullptr;
  T *ap = acts.data_ptr<T>(), *np = hn_all.data_ptr<T>();
  state_forward<T>(T_, B, G, H, rec, M, h.data_ptr<T>(), pre.data_ptr<T>(), out.data_ptr<T>(),
                   [&](int64_t t, int64_t b, const T* a, T* hb, T* ob) {
    const T* x = xp + (t * B + b) * G;
    T* sa = ap + ((save ? t * B : 0) + b) * G;
    T* sn = np + ((save ? t * B : 0) + b) * H;
    over_units<T, kForwardLanes>(H, [&](const auto& l) {
      const auto r = sigmoid(l.ld(a) + l.ld(x) + l.ld(bp));
      const auto z = sigmoid(l.ld(a + H) + l.ld(x + H) + l.ld(bp + H));
      const auto hn = l.ld(a + 2 * H) + l.ld(bp + 2 * H);
      const auto n = tanh_(l.ld(x + 2 * H) + r * hn);
      const auto hnew = n + z * (l.ld(hb) - n);
      l.st(hb, hnew);
      l.st(ob, hnew);
      l.st(sa, r);
      l.st(sa + H, z);
      l.st(sa + 2 * H, n);
      l.st(sn, hn);
    });
  });
  return {out, h, acts, hn_all};
}

// Its backward from the output's and h_n's gradients: per step dh' = dh + dout_t, dn = dh' (1 − z),
// dz = dh' (h_{t-1} − n), da_n = dn (1 − n²), dr = da_n A_n; the gradient of x is [da_r, da_z, da_n] and
// that of A is dA = [da_r, da_z, r da_n]; dh_{t-1} = dh' z + dA W_hh. dW_hh and db_hh from one product
// over all steps (layer_grads: dA^T [h_{t-1} | 1]). Returns dxg, dh0, dW_hh, db_hh (empty where not wanted).
template <typename T>
std::vector<at::Tensor> gru_backward_impl(const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& acts,
                                          const at::Tensor& hn_all, const at::Tensor& h0, const at::Tensor& out,
                                          const at::Tensor& w_hh, const at::Tensor& mask, bool need_dw_hh,
                                          bool need_db_hh) {
  const int64_t T_ = acts.size(0), B = acts.size(1), G = acts.size(2), H = G / 3;
  auto opts = acts.options();
  auto dxg = at::empty({T_, B, G}, opts);
  auto da = at::empty({T_, B, G}, opts);
  auto dh = dh_n.contiguous().clone();
  auto dout_c = dout.contiguous();
  auto h0c = h0.contiguous();
  const Recurrent<T> rec(w_hh.data_ptr<T>(), G, H, /*transposed=*/false, /*one_row=*/B == 1);
  const uint8_t* M = mask.defined() ? mask.data_ptr<uint8_t>() : nullptr;
  const T *ap = acts.data_ptr<T>(), *np = hn_all.data_ptr<T>(), *dop = dout_c.data_ptr<T>(),
          *h0p = h0c.data_ptr<T>(), *op = out.data_ptr<T>();
  T *dxp = dxg.data_ptr<T>(), *dap = da.data_ptr<T>(), *dhp = dh.data_ptr<T>();
  state_backward<T>(T_, B, G, H, rec, M, dap, dhp, [&](int64_t t, int64_t b, bool active) {
    const int64_t row = t * B + b;
    T* dx = dxp + row * G;
    T* dA = dap + row * G;
    if (!active) {  // frozen step: the state's gradient passes through, nothing reaches the gates
      std::memset(dx, 0, G * sizeof(T));
      std::memset(dA, 0, G * sizeof(T));
      return;
    }
    const T* a = ap + row * G;
    const T* hn = np + row * H;
    const T* hprev = t == 0 ? h0p + b * H : op + (row - B) * H;
    const T* dob = dop + row * H;
    T* dhb = dhp + b * H;
    over_units<T, kBackwardLanes>(H, [&](const auto& l) {
      using X = typename std::decay_t<decltype(l)>::X;
      const X one = X{} + T(1);
      const X r = l.ld(a), z = l.ld(a + H), n = l.ld(a + 2 * H);
      const X d = l.ld(dhb) + l.ld(dob);
      const X dan = d * (one - z) * (one - n * n);
      const X dar = dan * l.ld(hn) * r * (one - r);
      const X daz = d * (l.ld(hprev) - n) * z * (one - z);
      l.st(dx, dar);
      l.st(dx + H, daz);
      l.st(dx + 2 * H, dan);
      l.st(dA, dar);
      l.st(dA + H, daz);
      l.st(dA + 2 * H, r * dan);
      l.st(dhb, d * z);
    });
  });
  auto none = at::empty({0}, opts);
  at::Tensor dw = none, db = none;
  if (need_dw_hh || need_db_hh) {
    LayerGrads g = layer_grads(da, h0c, out.contiguous(), at::Tensor(), at::Tensor(), need_dw_hh, false, need_db_hh,
                               false);
    if (need_dw_hh) dw = g.w_hh;
    if (need_db_hh) db = g.bias;
  }
  return {dxg, dh, dw, db};
}

// The tensors of a GRU (gates = 3) or RNN (gates = 1) layer as its loops read them: xg (T, B, G = gates·H)
// contiguous, W_hh (G, H), h0 (B, H), b_hh (G) where given, the mask (T, B) where given; cell names the
// layer in messages ("the GRU's").
void check_state_layer(const at::Tensor& xg, int64_t gates, const char* cell, const at::Tensor& h0,
                       const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& mask) {
  check_steps(xg, "xg");
  const at::ScalarType dt = xg.scalar_type();
  check_dtype(dt);
  TORCH_CHECK(xg.size(2) % gates == 0, "lstmkit cpu_fused: ", cell, " xg must have ", gates, "·H columns");
  const int64_t T = xg.size(0), B = xg.size(1), G = xg.size(2), H = G / gates;
  expect(w_hh, {G, H}, dt, (std::string(cell) + " W_hh").c_str());
  TORCH_CHECK(w_hh.is_contiguous(), "lstmkit cpu_fused: W_hh must be contiguous");
  expect(h0, {B, H}, dt, "h0");
  if (b_hh.defined() && b_hh.numel()) expect(b_hh, {G}, dt, (std::string(cell) + " b_hh").c_str());
  if (mask.defined()) expect(mask, {T, B}, at::kByte, "the mask");
}

// (out, h_n, saved gates r z n, saved A_n) — the last two one step's worth without save.
std::vector<at::Tensor> gru_forward(const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& w_hh,
                                   const at::Tensor& b_hh, const c10::optional<at::Tensor>& mask, bool save) {
  at::Tensor m = mask.has_value() ? mask->contiguous() : at::Tensor();
  check_state_layer(xg, 3, "the GRU's", h0, w_hh, b_hh, m);
  if (xg.scalar_type() == at::kFloat) return gru_forward_impl<float>(xg, h0, w_hh, b_hh, m, save);
  return gru_forward_impl<double>(xg, h0, w_hh, b_hh, m, save);
}

std::vector<at::Tensor> gru_backward(const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& acts,
                                    const at::Tensor& hn_all, const at::Tensor& h0, const at::Tensor& out,
                                    const at::Tensor& w_hh, const c10::optional<at::Tensor>& mask, bool need_dw_hh,
                                    bool need_db_hh) {
  at::Tensor m = mask.has_value() ? mask->contiguous() : at::Tensor();
  check_state_layer(acts, 3, "the GRU's", h0, w_hh, at::Tensor(), m);
  const at::ScalarType dt = acts.scalar_type();
  const int64_t T = acts.size(0), B = acts.size(1), H = acts.size(2) / 3;
  expect(hn_all, {T, B, H}, dt, "the GRU's saved A_n");
  expect(out, {T, B, H}, dt, "the outputs");
  expect(dout, {T, B, H}, dt, "the output's gradient");
  expect(dh_n, {B, H}, dt, "h_n's gradient");
  if (dt == at::kFloat)
    return gru_backward_impl<float>(dout, dh_n, acts, hn_all, h0, out, w_hh, m, need_dw_hh, need_db_hh);
  return gru_backward_impl<double>(dout, dh_n, acts, hn_all, h0, out, w_hh, m, need_dw_hh, need_db_hh);
}


// What the two layer nodes below keep besides tensors (an absent weight or mask is an empty tensor:
// autograd's C++ nodes take no undefined inputs), and the check their backward starts with.
struct LayerKind {
  int64_t variant;
  bool bias, peep, fgr;
};

void save_kind(torch::autograd::AutogradContext* ctx, int64_t variant, const at::Tensor& b_ih, const at::Tensor& w_peep,
               const at::Tensor& w_fgr) {
  ctx->saved_data["variant"] = variant;
  ctx->saved_data["bias"] = b_ih.numel() > 0;
  ctx->saved_data["peep"] = w_peep.numel() > 0;
  ctx->saved_data["fgr"] = w_fgr.numel() > 0;
}

// The backwards are raw kernels, differentiable once: with create_graph their results would silently carry
// no second derivative, so they say so instead.
void refuse_double_backward() {
  TORCH_CHECK(!at::GradMode::is_enabled(), "lstmkit cpu_fused: its backward cannot be differentiated again "
              "(create_graph=True, double backward); build the layer with backend='native' (GRU, RNN, the "
              "standard LSTM cell without layer norm) or backend='reference'");
}

LayerKind load_kind(torch::autograd::AutogradContext* ctx) {
  refuse_double_backward();
  return {ctx->saved_data["variant"].toInt(), ctx->saved_data["bias"].toBool(), ctx->saved_data["peep"].toBool(),
          ctx->saved_data["fgr"].toBool()};
}

c10::optional<at::Tensor> present(const at::Tensor& t) {
  return t.numel() ? c10::optional<at::Tensor>(t) : c10::nullopt;
}

// One layer and direction for training, input projection included, as a C++ autograd node: x (T·B, I),
// W_ih, b_ih, b_hh, h0, c0, W_hh, W_peep, W_fgr, mask, and with layer norm the six gains and shifts (input,
// recurrent, cell) -> out (T, B, H), h_n, c_n. Forward: the projection (with layer norm: W_ih x, then
// LN(·; γ_ih, β_ih) + b_ih + b_hh in one pass, input_ln) and the time loop; backward: one lstm_backward call
// (the time loop, dW_hh, FGR's dW_fgr; without layer norm also dx, dW_ih and the biases'), with layer norm
// then input_ln_backward, dx and dW_ih. As Python autograd.Functions (one per layer, three with layer norm)
// the same cost 35-60 us more per layer and pass at the seed's size, ~390 us per forward+backward of its
// two layers with layer norm.
struct LayerFunction : public torch::autograd::Function<LayerFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x2,
                                                const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& b_hh,
                                                const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                                                const at::Tensor& w_peep, const at::Tensor& w_fgr, const at::Tensor& mask,
                                                const at::Tensor& g_ih, const at::Tensor& s_ih, const at::Tensor& g_hh,
                                                const at::Tensor& s_hh, const at::Tensor& g_c, const at::Tensor& s_c,
                                                int64_t variant, int64_t T, double eps) {
    TORCH_CHECK(T > 0 && x2.dim() == 2 && x2.size(0) % T == 0, "lstmkit cpu_fused: layer input shape");
    const bool ln = g_ih.numel() > 0;
    const int64_t B = x2.size(0) / T;
    at::Tensor xw, xg, stats;
    if (ln) {
      xw = matmul(x2, w_ih, true, c10::nullopt);  // (T·B, G)
      auto yn = input_ln(xw, g_ih, s_ih, b_ih.numel() ? b_ih + b_hh : b_ih, eps);
      xg = yn[0].view({T, B, -1});
      stats = yn[1];
    } else {
      xg = matmul(x2, w_ih, true, b_ih.numel() ? c10::optional<at::Tensor>(b_ih + b_hh) : c10::nullopt).view({T, B, -1});
    }
    std::vector<at::Tensor> norms;
    if (ln) norms = {g_hh, s_hh, g_c, s_c};
    auto r = lstm_forward(xg, h0, c0, w_hh.contiguous(), w_peep, w_fgr, present(mask), variant, norms, eps, true);
    // r: out, h_n, c_n, acts, c_all, gates, and with layer norm hat_hh, rstd_hh, hat_c, rstd_c
    std::vector<at::Tensor> keep = {x2, w_ih, h0, w_hh, w_peep, w_fgr, r[0], r[3], r[4], r[5], mask};
    if (ln) keep.insert(keep.end(), {xw, stats, g_ih, g_hh, s_hh, g_c, s_c, r[6], r[7], r[8], r[9]});
    ctx->save_for_backward(keep);
    save_kind(ctx, variant, b_ih, w_peep, w_fgr);
    return {r[0], r[1], r[2]};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const LayerKind k = load_kind(ctx);
    const auto s = ctx->get_saved_variables();
    const at::Tensor &x2 = s[0], &w_ih = s[1], &h0 = s[2], &w_hh = s[3], &wp = s[4], &wf = s[5], &out = s[6];
    const at::Tensor &acts = s[7], &c_all = s[8], &gates = s[9], &mask = s[10];
    const bool ln = s.size() > 11;
    bool need[16];
    for (int i = 0; i < 16; ++i) need[i] = ctx->needs_input_grad(i);
    const bool need_db = k.bias && (need[2] || need[3]);
    const at::Tensor u, none = x2.new_empty({0});
    std::vector<at::Tensor> norms, saved;
    if (ln) {
      norms = {s[14], s[15], s[16], s[17]};
      saved = {s[18], s[19], s[20], s[21]};
    }
    // Without layer norm dx, dW_ih and the biases' gradient come from the same call (from dA); with it,
    // from the gradient of W_ih x through the input norm, below.
    auto r = lstm_backward(grads[0].contiguous(), grads[1].contiguous(), grads[2].contiguous(), acts, c_all, w_hh, wp, wf,
                           present(mask), k.variant, norms, saved, h0, out, gates, need[6], k.fgr && need[8],
                           ln ? none : x2, w_ih, !ln && need[0], !ln && need[1], !ln && need_db);
    // r: dxg, dh0, dc0, dw_peep, dhg, dg_hh, ds_hh, dg_c, ds_c (layer norm), dw_hh, dw_fgr, dx, dw_ih, db
    at::Tensor dx = r[11], dw_ih = r[12], db = r[13], dg_ih, ds_ih;
    if (ln) {
      const int64_t G = s[11].size(1);
      auto dn = input_ln_backward(r[0].view({-1, G}), s[11], s[12], s[13]);  // d(W_ih x), dγ_ih, dβ_ih
      if (need[0]) dx = input_grad(dn[0], w_ih);
      if (need[1]) dw_ih = weight_grad(dn[0], x2.contiguous(), {{0, G}});
      dg_ih = dn[1];
      ds_ih = db = dn[2];  // the biases are added after the norm: their gradient is its shift's
    }
    return {need[0] ? dx : u,
            need[1] ? dw_ih : u,
            need_db && need[2] ? db : u,
            need_db && need[3] ? db : u,
            need[4] ? r[1] : u,
            need[5] ? r[2] : u,
            need[6] ? r[9] : u,
            k.peep && need[7] ? r[3] : u,
            k.fgr && need[8] ? r[10] : u,
            u,
            ln && need[10] ? dg_ih : u,
            ln && need[11] ? ds_ih : u,
            ln && need[12] ? r[5] : u,
            ln && need[13] ? r[6] : u,
            ln && need[14] ? r[7] : u,
            ln && need[15] ? r[8] : u,
            u, u, u};
  }
};

// The GRU's layer for training as a C++ autograd node, input projection included: x (T·B, I), W_ih, b_ih,
// h0, W_hh, b_hh, mask -> out (T, B, H), h_n. Forward: x W_ih^T + b_ih (the packed kernel), then the time
// loop; backward: gru_backward, then dx = dxg W_ih and W_ih's and b_ih's gradients from one product over
// dxg^T [x | 1] (layer_grads). As a Python autograd.Function around the time loop, with torch's linear for
// the projection, the seed's two layers spent ~660 us per forward+backward outside the kernels.
struct GruFunction : public torch::autograd::Function<GruFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x2,
                                                const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& h0,
                                                const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& mask,
                                                int64_t T) {
    TORCH_CHECK(T > 0 && x2.dim() == 2 && x2.size(0) % T == 0, "lstmkit cpu_fused: the GRU layer's input shape");
    check_dtype(x2.scalar_type());
    const int64_t B = x2.size(0) / T;
    expect(w_ih, {w_hh.size(0), x2.size(1)}, x2.scalar_type(), "the GRU's W_ih");
    if (b_ih.numel()) expect(b_ih, {w_hh.size(0)}, x2.scalar_type(), "the GRU's b_ih");
    const at::Tensor xg = matmul(x2, w_ih, true, present(b_ih)).view({T, B, -1});
    auto r = gru_forward(xg, h0, w_hh.contiguous(), b_hh, present(mask), true);  // out, h_n, acts, A_n
    ctx->save_for_backward({x2, w_ih, h0, w_hh, r[0], r[2], r[3], mask});
    ctx->saved_data["bias"] = b_ih.numel() > 0;
    return {r[0], r[1]};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    refuse_double_backward();
    const auto s = ctx->get_saved_variables();
    const at::Tensor &x2 = s[0], &w_ih = s[1], &h0 = s[2], &w_hh = s[3], &out = s[4], &acts = s[5], &hn = s[6],
                     &mask = s[7];
    const bool bias = ctx->saved_data["bias"].toBool();
    bool need[6];
    for (int i = 0; i < 6; ++i) need[i] = ctx->needs_input_grad(i);
    const at::Tensor u;
    auto r = gru_backward(grads[0].contiguous(), grads[1].contiguous(), acts, hn, h0, out, w_hh.contiguous(),
                          present(mask), need[4], bias && need[5]);  // dxg, dh0, dW_hh, db_hh
    const int64_t G = acts.size(2);
    const at::Tensor dxg = r[0].view({-1, G});
    at::Tensor dx, dw_ih, db_ih;
    if (need[0]) dx = input_grad(dxg, w_ih);
    if (need[1] || (bias && need[2])) {
      LayerGrads g = layer_grads(r[0], h0.contiguous(), out, x2.contiguous(), at::Tensor(), false, need[1],
                                 bias && need[2], false);
      dw_ih = g.w_ih;
      db_ih = g.bias;
    }
    return {dx, need[1] ? dw_ih : u, bias && need[2] ? db_ih : u, need[3] ? r[1] : u, need[4] ? r[2] : u,
            bias && need[5] ? r[3] : u, u, u};
  }
};

std::vector<at::Tensor> gru_layer(const at::Tensor& x2, const at::Tensor& w_ih, const c10::optional<at::Tensor>& b_ih,
                                  const at::Tensor& h0, const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh,
                                  const c10::optional<at::Tensor>& mask, int64_t T) {
  const at::Tensor none = x2.new_empty({0});
  return GruFunction::apply(x2, w_ih, b_ih.value_or(none), h0, w_hh, b_hh.value_or(none),
                            mask.value_or(x2.new_empty({0}, at::kByte)), T);
}

// ------------------------------------------------------------------------------------------ Elman RNN
// h_t = act(xg_t + h_{t-1} W_hh^T), act tanh or relu, xg = W_ih x + b_ih + b_hh from one product before
// the loop. Nothing is saved beyond the outputs (h_t is the output on active rows). Backward: dpre =
// (dh + dout_t) act'(h_t) (1 − h², or h > 0), dh_{t-1} = dpre W_hh; its weight gradients are the LSTM's
// one product over [h_{t-1} | x | 1].
template <typename T>
std::vector<at::Tensor> rnn_forward_impl(const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& w_hh, bool relu,
                                         const at::Tensor& mask) {
  const int64_t T_ = xg.size(0), B = xg.size(1), H = xg.size(2);
  auto opts = xg.options();
  auto out = at::empty({T_, B, H}, opts);
  auto h = h0.contiguous().clone();
  auto pre = at::empty({B, H}, opts);
  const Recurrent<T> rec(w_hh.data_ptr<T>(), H, H, /*transposed=*/true, /*one_row=*/B == 1);
  const T* xp = xg.data_ptr<T>();
  const uint8_t* M = mask.defined() ? mask.data_ptr<uint8_t>() : nullptr;
  state_forward<T>(T_, B, H, H, rec, M, h.data_ptr<T>(), pre.data_ptr<T>(), out.data_ptr<T>(),
                   [&](int64_t t, int64_t b, const T* a, T* hb, T* ob) {
    const T* x = xp + (t * B + b) * H;
    if (relu) {
#pragma GCC ivdep
      for (int64_t j = 0; j < H; ++j) hb[j] = ob[j] = std::max(a[j] + x[j], T(0));
    } else {
      over_units<T, kForwardLanes>(H, [&](const auto& l) {
        const auto hn = tanh_(l.ld(a) + l.ld(x));
        l.st(hb, hn);
        l.st(ob, hn);
      });
    }
  });
  return {out, h};
}

template <typename T>
std::vector<at::Tensor> rnn_backward_impl(const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& out,
                                          const at::Tensor& w_hh, bool relu, const at::Tensor& mask) {
  const int64_t T_ = out.size(0), B = out.size(1), H = out.size(2);
  auto opts = out.options();
  auto dpre = at::empty({T_, B, H}, opts);
  auto dh = dh_n.contiguous().clone();
  auto dout_c = dout.contiguous();
  const Recurrent<T> rec(w_hh.data_ptr<T>(), H, H, /*transposed=*/false, /*one_row=*/B == 1);
  const uint8_t* M = mask.defined() ? mask.data_ptr<uint8_t>() : nullptr;
  const T *op = out.data_ptr<T>(), *dop = dout_c.data_ptr<T>();
  T *dp = dpre.data_ptr<T>(), *dhp = dh.data_ptr<T>();
  state_backward<T>(T_, B, H, H, rec, M, dp, dhp, [&](int64_t t, int64_t b, bool active) {
    const int64_t row = t * B + b;
    T* d = dp + row * H;
    if (!active) {  // frozen step: the state's gradient passes through
      std::memset(d, 0, H * sizeof(T));
      return;
    }
    const T* o = op + row * H;
    const T* g = dop + row * H;
    T* dhb = dhp + b * H;
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      const T total = dhb[j] + g[j];
      d[j] = relu ? (o[j] > T(0) ? total : T(0)) : total * (T(1) - o[j] * o[j]);
      dhb[j] = T(0);
    }
  });
  return {dpre, dh};
}

// One Elman layer for training as a C++ autograd node: x (T·B, I), W_ih, b_ih, h0, W_hh, b_hh, mask ->
// out (T, B, H), h_n.
struct RnnFunction : public torch::autograd::Function<RnnFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x2,
                                                const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& h0,
                                                const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& mask,
                                                int64_t T, bool relu) {
    TORCH_CHECK(T > 0 && x2.dim() == 2 && x2.size(0) % T == 0, "lstmkit cpu_fused: the RNN layer's input shape");
    const int64_t B = x2.size(0) / T, H = w_hh.size(0);
    const at::ScalarType dt = x2.scalar_type();
    check_dtype(dt);
    expect(w_ih, {H, x2.size(1)}, dt, "the RNN's W_ih");
    if (b_ih.numel()) expect(b_ih, {H}, dt, "the RNN's b_ih");
    if (b_hh.numel()) expect(b_hh, {H}, dt, "the RNN's b_hh");
    at::Tensor bias = b_ih.numel() ? (b_hh.numel() ? b_ih + b_hh : b_ih) : b_hh;
    const at::Tensor xg = matmul(x2, w_ih, true, present(bias)).view({T, B, H});
    const at::Tensor whh = w_hh.contiguous();
    check_state_layer(xg, 1, "the RNN's", h0, whh, at::Tensor(), mask.numel() ? mask : at::Tensor());
    auto r = dt == at::kFloat ? rnn_forward_impl<float>(xg, h0, whh, relu, mask.numel() ? mask.contiguous() : at::Tensor())
                              : rnn_forward_impl<double>(xg, h0, whh, relu, mask.numel() ? mask.contiguous() : at::Tensor());
    ctx->save_for_backward({x2, w_ih, h0, whh, r[0], mask});
    ctx->saved_data["relu"] = relu;
    return {r[0], r[1]};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    refuse_double_backward();
    const auto s = ctx->get_saved_variables();
    const at::Tensor &x2 = s[0], &w_ih = s[1], &h0 = s[2], &w_hh = s[3], &out = s[4], &mask = s[5];
    const bool relu = ctx->saved_data["relu"].toBool();
    bool need[6];
    for (int i = 0; i < 6; ++i) need[i] = ctx->needs_input_grad(i);
    const at::Tensor u, m = mask.numel() ? mask.contiguous() : at::Tensor();
    auto r = out.scalar_type() == at::kFloat
                 ? rnn_backward_impl<float>(grads[0].contiguous(), grads[1].contiguous(), out, w_hh, relu, m)
                 : rnn_backward_impl<double>(grads[0].contiguous(), grads[1].contiguous(), out, w_hh, relu, m);
    const int64_t H = out.size(2);
    const at::Tensor dpre = r[0].view({-1, H});
    at::Tensor dx, dw_hh, dw_ih, db;
    if (need[0]) dx = input_grad(dpre, w_ih);
    const bool need_b = need[2] || need[5];
    if (need[1] || need[4] || need_b) {
      LayerGrads g = layer_grads(r[0], h0.contiguous(), out, x2.contiguous(), at::Tensor(), need[4], need[1], need_b,
                                 false);
      dw_hh = g.w_hh;
      dw_ih = g.w_ih;
      db = g.bias;
    }
    return {dx, need[1] ? dw_ih : u, need[2] ? db : u, need[3] ? r[1] : u, need[4] ? dw_hh : u, need[5] ? db : u,
            u, u, u};
  }
};

std::vector<at::Tensor> rnn_layer(const at::Tensor& x2, const at::Tensor& w_ih, const c10::optional<at::Tensor>& b_ih,
                                  const at::Tensor& h0, const at::Tensor& w_hh, const c10::optional<at::Tensor>& b_hh,
                                  const c10::optional<at::Tensor>& mask, int64_t T, bool relu) {
  const at::Tensor none = x2.new_empty({0});
  return RnnFunction::apply(x2, w_ih, b_ih.value_or(none), h0, w_hh, b_hh.value_or(none),
                            mask.value_or(x2.new_empty({0}, at::kByte)), T, relu);
}

// Inference: (out, h_n) from xg = W_ih x + b_ih + b_hh (T, B, H).
std::vector<at::Tensor> rnn_forward(const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& w_hh, bool relu,
                                   const c10::optional<at::Tensor>& mask) {
  at::Tensor m = mask.has_value() ? mask->contiguous() : at::Tensor();
  const at::Tensor whh = w_hh.contiguous();
  check_state_layer(xg, 1, "the RNN's", h0, whh, at::Tensor(), m);
  const at::ScalarType dt = xg.scalar_type();
  return dt == at::kFloat ? rnn_forward_impl<float>(xg, h0, whh, relu, m) : rnn_forward_impl<double>(xg, h0, whh, relu, m);
}

// The node's entry: absent weights, mask and (without layer norm) norms as empty tensors.
std::vector<at::Tensor> layer_train(const at::Tensor& x2, const at::Tensor& w_ih, const c10::optional<at::Tensor>& b_ih,
                                    const c10::optional<at::Tensor>& b_hh, const at::Tensor& h0, const at::Tensor& c0,
                                    const at::Tensor& w_hh, const c10::optional<at::Tensor>& w_peep,
                                    const c10::optional<at::Tensor>& w_fgr, const c10::optional<at::Tensor>& mask,
                                    const std::vector<at::Tensor>& ln, int64_t variant, int64_t T, double eps) {
  TORCH_CHECK(ln.empty() || ln.size() == 6, "lstmkit cpu_fused: layer norm needs 6 tensors (ih, hh, cell: gain, "
              "shift)");
  const at::Tensor none = x2.new_empty({0});
  auto norm = [&](size_t i) { return ln.empty() ? none : ln[i]; };
  return LayerFunction::apply(x2, w_ih, b_ih.value_or(none), b_hh.value_or(none), h0, c0, w_hh, w_peep.value_or(none),
                              w_fgr.value_or(none), mask.value_or(x2.new_empty({0}, at::kByte)), norm(0), norm(1),
                              norm(2), norm(3), norm(4), norm(5), variant, T, eps);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &lstm_forward, "fused LSTM-variant recurrence, one layer and direction");
  m.def("forward_input", &lstm_forward_input, "inference from the input: the projection inside the time loop");
  m.def("backward", &lstm_backward, "its backward: pre-activation gradients and dh0, dc0");
  m.def("layer", &layer_train, "one layer for training as an autograd node: the projection, the time loop, and backward");
  m.def("gru_forward", &gru_forward, "torch's GRU, one layer and direction: the time loop from W_ih x + b_ih");
  m.def("gru_layer", &gru_layer, "one GRU layer for training as an autograd node: the projection, the time loop, and backward");
  m.def("rnn_layer", &rnn_layer, "one Elman RNN layer (tanh or relu) for training as an autograd node");
  m.def("rnn_forward", &rnn_forward, "the Elman RNN's time loop for inference, from W_ih x + both biases");
  m.def("gru_backward", &gru_backward, "its backward: the gradient of W_ih x + b_ih, dh0, dW_hh, db_hh");
  m.def("uses_blas", &uses_blas, "whether the per-step GEMMs call the BLAS directly");
  m.def("matmul_tn", &matmul_tn, "a^T b (some of a's columns), the weight gradients summed over steps",
        py::arg("a"), py::arg("b"), py::arg("cols") = std::vector<int64_t>{});
  m.def("input_ln", &input_ln, "LN(W_ih x; g, b) + bias over each row, and the rows' mean and 1/std");
  m.def("input_ln_backward", &input_ln_backward, "its backward: dxw, dg, db");
  m.def("matmul", &matmul, "a @ w^T (transposed) or a @ w, plus an optional bias row");
}
