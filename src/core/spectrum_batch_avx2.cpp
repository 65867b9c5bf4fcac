// The fast frozen-spectrum kernel (spectrum_batch_kernel.hpp) at 4 lanes: AVX2 + FMA
// intrinsics, and glibc's libmvec (_ZGVdN4v_*, < 4 ulp) for log, exp, atan2.
// Only called after simd_supported(SimdLevel::kAvx2); reference and tests as the kernel's.
#include "spectrum_batch_impl.hpp"

#if defined(MDNSTAB_HAVE_LIBMVEC)
#include <immintrin.h>

#include <cstdint>
#include <memory>

// Everything below is compiled for AVX2 + FMA and has internal linkage but the entry point.
#pragma GCC push_options
#pragma GCC target("avx2,fma")

extern "C" {
__m256d _ZGVdN4v_log(__m256d);
__m256d _ZGVdN4v_exp(__m256d);
__m256d _ZGVdN4vv_atan2(__m256d, __m256d);
}

namespace mdnstab::batch_kernel {
namespace {
struct VD {
  __m256d v;
  VD() = default;
  VD(__m256d x) : v(x) {}
  VD(double x) : v(_mm256_set1_pd(x)) {}
};
// A mask: all-ones or all-zeros lanes.
struct VM {
  __m256d m;
  VM() = default;
  explicit VM(bool b) : m(_mm256_castsi256_pd(_mm256_set1_epi64x(b ? -1 : 0))) {}
  static VM of(__m256d k) {
    VM r;
    r.m = k;
    return r;
  }
};
struct Lane256 {
  using D = VD;
  using M = VM;
  static constexpr int W = 4;
  static VD load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, VD v) { _mm256_storeu_pd(p, v.v); }
};
inline VD operator+(VD a, VD b) { return _mm256_add_pd(a.v, b.v); }
inline VD operator-(VD a, VD b) { return _mm256_sub_pd(a.v, b.v); }
inline VD operator*(VD a, VD b) { return _mm256_mul_pd(a.v, b.v); }
inline VD operator/(VD a, VD b) { return _mm256_div_pd(a.v, b.v); }
inline VD operator-(VD a) { return _mm256_xor_pd(a.v, _mm256_set1_pd(-0.0)); }
inline VM operator<(VD a, VD b) { return VM::of(_mm256_cmp_pd(a.v, b.v, _CMP_LT_OQ)); }
inline VM operator<=(VD a, VD b) { return VM::of(_mm256_cmp_pd(a.v, b.v, _CMP_LE_OQ)); }
inline VM operator>(VD a, VD b) { return VM::of(_mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ)); }
inline VM operator>=(VD a, VD b) { return VM::of(_mm256_cmp_pd(a.v, b.v, _CMP_GE_OQ)); }
inline VM operator==(VD a, VD b) { return VM::of(_mm256_cmp_pd(a.v, b.v, _CMP_EQ_OQ)); }
inline VM operator!=(VD a, VD b) { return VM::of(_mm256_cmp_pd(a.v, b.v, _CMP_NEQ_UQ)); }  // C++ !=
inline VD select(VM m, VD a, VD b) { return _mm256_blendv_pd(b.v, a.v, m.m); }
inline bool any(VM m) { return _mm256_movemask_pd(m.m) != 0; }
inline VM land(VM a, VM b) { return VM::of(_mm256_and_pd(a.m, b.m)); }
inline VM lor(VM a, VM b) { return VM::of(_mm256_or_pd(a.m, b.m)); }
inline VM lnot(VM a) { return VM::of(_mm256_xor_pd(a.m, _mm256_castsi256_pd(_mm256_set1_epi64x(-1)))); }
inline long count(VM m) { return __builtin_popcount(unsigned(_mm256_movemask_pd(m.m))); }
// Every lane of a has the bits of the same lane of b; every lane the bits of lane 0.
inline bool same_bits(VD a, VD b) {
  return _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_castpd_si256(a.v), _mm256_castpd_si256(b.v)))) == 0xf;
}
inline bool uniform(VD x) { return same_bits(x, _mm256_permute4x64_pd(x.v, 0)); }
inline VD min_(VD a, VD b) { return select(b < a, b, a); }
inline VD max_(VD a, VD b) { return select(a < b, b, a); }
inline VD sqrt_(VD x) { return _mm256_sqrt_pd(x.v); }
inline VD fma_(VD a, VD b, VD c) { return _mm256_fmadd_pd(a.v, b.v, c.v); }
inline VD abs_(VD x) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), x.v); }
inline VD copysign_(VD mag, VD sgn) {
  const __m256d sign = _mm256_set1_pd(-0.0);
  return _mm256_or_pd(_mm256_andnot_pd(sign, mag.v), _mm256_and_pd(sign, sgn.v));
}
inline VD log_(VD x) { return _ZGVdN4v_log(x.v); }
inline VD exp_(VD x) { return _ZGVdN4v_exp(x.v); }
inline VD atan2_(VD y, VD x) { return _ZGVdN4vv_atan2(y.v, x.v); }
// Only on (ln r, theta) of a complex pair, |ln r| < 750 and theta in (0, pi): no
// overflow or underflow to guard, and within an ulp or so of libm's hypot.
inline VD hypot_(VD x, VD y) { return _mm256_sqrt_pd(_mm256_fmadd_pd(x.v, x.v, _mm256_mul_pd(y.v, y.v))); }
}  // namespace
}  // namespace mdnstab::batch_kernel

#include "spectrum_batch_kernel.hpp"

namespace mdnstab::batch_kernel {
void run_avx2(KernelArgs& a, long begin, long end) { Kernel<Lane256>::run(a, begin, end); }
}  // namespace mdnstab::batch_kernel

#pragma GCC pop_options
#endif  // MDNSTAB_HAVE_LIBMVEC
