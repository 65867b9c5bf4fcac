// bfloat16 for emulating bf16 kernels on the CPU (chunk_ref): a float that is
// always bf16-representable, where every arithmetic operation rounds its float
// result to bf16 (round to nearest, ties to even). Also the tf32 rounding that
// tensor cores apply to fp32 matrix-product operands. Tested in tests/test_bf16.cpp.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace mdnstab {

// float -> nearest bf16 (ties to even), as a float. NaN stays NaN (quiet),
// finite values beyond the largest bf16 (about 3.39e38) round to +-inf.
inline float round_bf16(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7f800000u) == 0x7f800000u) {  // inf stays, a NaN stays a (quiet) NaN
    if (u & 0x007fffffu) return std::bit_cast<float>((u & 0xffff0000u) | 0x00400000u);
    return x;
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  return std::bit_cast<float>(u & 0xffff0000u);
}

// double -> nearest bf16 without double rounding: round to float toward zero
// with a sticky bit (round-to-odd), then to bf16; a float has 16 spare bits.
inline float round_bf16(double x) {
  if (!std::isfinite(x)) return round_bf16(static_cast<float>(x));
  float f = static_cast<float>(x);
  if (static_cast<double>(f) != x) {
    if (std::fabs(static_cast<double>(f)) > std::fabs(x)) f = std::nextafter(f, 0.0f);
    f = std::bit_cast<float>(std::bit_cast<uint32_t>(f) | 1u);
  }
  return round_bf16(f);
}

// float -> tf32 (10 mantissa bits), round to nearest with ties away from zero,
// the conversion (cvt.rna.tf32.f32) Triton applies before a tf32 tl.dot.
inline float round_tf32(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  u += 0x1000u;
  return std::bit_cast<float>(u & 0xffffe000u);
}

class Bf16 {
 public:
  Bf16() = default;
  Bf16(float x) : f_(round_bf16(x)) {}    // NOLINT: implicit, rounds
  Bf16(double x) : f_(round_bf16(x)) {}   // NOLINT
  Bf16(int x) : f_(round_bf16(static_cast<float>(x))) {}  // NOLINT
  explicit operator float() const { return f_; }
  explicit operator double() const { return f_; }
  float value() const { return f_; }

  friend Bf16 operator+(Bf16 a, Bf16 b) { return Bf16(a.f_ + b.f_); }
  friend Bf16 operator-(Bf16 a, Bf16 b) { return Bf16(a.f_ - b.f_); }
  friend Bf16 operator*(Bf16 a, Bf16 b) { return Bf16(a.f_ * b.f_); }
  friend Bf16 operator/(Bf16 a, Bf16 b) { return Bf16(a.f_ / b.f_); }
  friend Bf16 operator-(Bf16 a) { return raw(-a.f_); }
  Bf16& operator+=(Bf16 b) { return *this = *this + b; }
  Bf16& operator-=(Bf16 b) { return *this = *this - b; }
  Bf16& operator*=(Bf16 b) { return *this = *this * b; }
  friend bool operator==(Bf16 a, Bf16 b) { return a.f_ == b.f_; }
  friend bool operator<(Bf16 a, Bf16 b) { return a.f_ < b.f_; }
  friend bool operator>(Bf16 a, Bf16 b) { return a.f_ > b.f_; }
  friend bool operator<=(Bf16 a, Bf16 b) { return a.f_ <= b.f_; }
  friend bool operator>=(Bf16 a, Bf16 b) { return a.f_ >= b.f_; }

  // Elementary functions: evaluated in float, the result rounded to bf16.
  friend Bf16 exp(Bf16 a) { return Bf16(std::exp(a.f_)); }
  friend Bf16 log(Bf16 a) { return Bf16(std::log(a.f_)); }
  friend Bf16 sqrt(Bf16 a) { return Bf16(std::sqrt(a.f_)); }
  friend Bf16 abs(Bf16 a) { return raw(std::fabs(a.f_)); }
  friend bool isfinite(Bf16 a) { return std::isfinite(a.f_); }
  friend Bf16 max(Bf16 a, Bf16 b) { return a.f_ < b.f_ ? b : a; }

  // A value known to be bf16-representable (no rounding).
  static Bf16 raw(float x) {
    Bf16 b;
    b.f_ = x;
    return b;
  }

 private:
  float f_ = 0.0f;
};

// Unit roundoff of bf16 (8 significant bits).
inline constexpr double kBf16UnitRoundoff = 0x1p-8;
inline constexpr double kTf32UnitRoundoff = 0x1p-11;

}  // namespace mdnstab
