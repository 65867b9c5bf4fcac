// The fast frozen-spectrum kernel (spectrum_batch_kernel.hpp) at 8 lanes: AVX-512F
// intrinsics, and glibc's libmvec (_ZGVeN8v_*, < 4 ulp) for log, exp, atan2.
// Only called after simd_supported(SimdLevel::kAvx512); reference and tests as the kernel's.
#include "spectrum_batch_impl.hpp"

#if defined(MDNSTAB_HAVE_LIBMVEC)
#include <immintrin.h>

#include <cstdint>
#include <memory>

// Everything below is compiled for AVX-512F and has internal linkage but the entry point.
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
// GCC 12 flags the deliberately undefined pass-through operand inside its own
// AVX-512 intrinsics (_mm512_undefined_pd, e.g. in _mm512_sqrt_pd) as uninitialized
// or maybe uninitialized: a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

extern "C" {
__m512d _ZGVeN8v_log(__m512d);
__m512d _ZGVeN8v_exp(__m512d);
__m512d _ZGVeN8vv_atan2(__m512d, __m512d);
}

namespace mdnstab::batch_kernel {
namespace {
struct VD {
  __m512d v;
  VD() = default;
  VD(__m512d x) : v(x) {}
  VD(double x) : v(_mm512_set1_pd(x)) {}
};
struct VM {
  __mmask8 m;
  VM() = default;
  explicit VM(bool b) : m(b ? 0xff : 0) {}
  static VM of(__mmask8 k) {
    VM r;
    r.m = k;
    return r;
  }
};
struct Lane512 {
  using D = VD;
  using M = VM;
  static constexpr int W = 8;
  static VD load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, VD v) { _mm512_storeu_pd(p, v.v); }
};
inline VD operator+(VD a, VD b) { return _mm512_add_pd(a.v, b.v); }
inline VD operator-(VD a, VD b) { return _mm512_sub_pd(a.v, b.v); }
inline VD operator*(VD a, VD b) { return _mm512_mul_pd(a.v, b.v); }
inline VD operator/(VD a, VD b) { return _mm512_div_pd(a.v, b.v); }
inline VD operator-(VD a) {
  return _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(a.v), _mm512_set1_epi64(INT64_MIN)));
}
inline VM operator<(VD a, VD b) { return VM::of(_mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ)); }
inline VM operator<=(VD a, VD b) { return VM::of(_mm512_cmp_pd_mask(a.v, b.v, _CMP_LE_OQ)); }
inline VM operator>(VD a, VD b) { return VM::of(_mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ)); }
inline VM operator>=(VD a, VD b) { return VM::of(_mm512_cmp_pd_mask(a.v, b.v, _CMP_GE_OQ)); }
inline VM operator==(VD a, VD b) { return VM::of(_mm512_cmp_pd_mask(a.v, b.v, _CMP_EQ_OQ)); }
inline VM operator!=(VD a, VD b) { return VM::of(_mm512_cmp_pd_mask(a.v, b.v, _CMP_NEQ_UQ)); }  // C++ !=
inline VD select(VM m, VD a, VD b) { return _mm512_mask_blend_pd(m.m, b.v, a.v); }
inline bool any(VM m) { return m.m != 0; }
inline VM land(VM a, VM b) { return VM::of(__mmask8(a.m & b.m)); }
inline VM lor(VM a, VM b) { return VM::of(__mmask8(a.m | b.m)); }
inline VM lnot(VM a) { return VM::of(__mmask8(~a.m)); }
inline long count(VM m) { return __builtin_popcount(m.m); }
// Every lane of a has the bits of the same lane of b; every lane the bits of lane 0.
inline bool same_bits(VD a, VD b) {
  return _mm512_cmpeq_epi64_mask(_mm512_castpd_si512(a.v), _mm512_castpd_si512(b.v)) == 0xff;
}
inline bool uniform(VD x) { return same_bits(x, _mm512_broadcastsd_pd(_mm512_castpd512_pd128(x.v))); }
inline VD min_(VD a, VD b) { return select(b < a, b, a); }
inline VD max_(VD a, VD b) { return select(a < b, b, a); }
inline VD sqrt_(VD x) { return _mm512_sqrt_pd(x.v); }
inline VD fma_(VD a, VD b, VD c) { return _mm512_fmadd_pd(a.v, b.v, c.v); }
inline VD abs_(VD x) { return _mm512_abs_pd(x.v); }
inline VD copysign_(VD mag, VD sgn) {
  const __m512i sign = _mm512_set1_epi64(INT64_MIN);
  return _mm512_castsi512_pd(_mm512_or_si512(_mm512_andnot_si512(sign, _mm512_castpd_si512(mag.v)),
                                             _mm512_and_si512(sign, _mm512_castpd_si512(sgn.v))));
}
inline VD log_(VD x) { return _ZGVeN8v_log(x.v); }
inline VD exp_(VD x) { return _ZGVeN8v_exp(x.v); }
inline VD atan2_(VD y, VD x) { return _ZGVeN8vv_atan2(y.v, x.v); }
// Only on (ln r, theta) of a complex pair, |ln r| < 750 and theta in (0, pi): no
// overflow or underflow to guard, and within an ulp or so of libm's hypot.
inline VD hypot_(VD x, VD y) { return _mm512_sqrt_pd(_mm512_fmadd_pd(x.v, x.v, _mm512_mul_pd(y.v, y.v))); }
}  // namespace
}  // namespace mdnstab::batch_kernel

#include "spectrum_batch_kernel.hpp"

namespace mdnstab::batch_kernel {
void run_avx512(KernelArgs& a, long begin, long end) { Kernel<Lane512>::run(a, begin, end); }
}  // namespace mdnstab::batch_kernel

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif  // MDNSTAB_HAVE_LIBMVEC
