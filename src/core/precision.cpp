// Names and numbers of the emulated precisions (see precision.hpp).
#include "mdnstab/precision.hpp"

#include <cfloat>
#include <cmath>

#include <fmt/format.h>

#include "mdnstab/bf16.hpp"

namespace mdnstab {

std::string_view to_string(Precision p) {
  switch (p) {
    case Precision::kFp64: return "fp64";
    case Precision::kFp32: return "fp32";
    case Precision::kTf32: return "tf32";
    case Precision::kBf16: return "bf16";
  }
  return "?";
}

Result<Precision> parse_precision(std::string_view s) {
  for (Precision p : {Precision::kFp64, Precision::kFp32, Precision::kTf32, Precision::kBf16})
    if (s == to_string(p)) return p;
  return error(Code::kInvalidArgument, fmt::format("unknown precision '{}' (expected fp64, fp32, tf32 or bf16)", s));
}

PrecisionTraits traits(Precision p) {
  const double u64 = DBL_EPSILON / 2, u32 = FLT_EPSILON / 2;
  const double lmax64 = std::log(DBL_MAX), lmax32 = std::log(double(FLT_MAX));
  switch (p) {
    case Precision::kFp64: return {u64, u64, lmax64, DBL_MIN};
    case Precision::kFp32: return {u32, u32, lmax32, FLT_MIN};
    case Precision::kTf32: return {u32, kTf32UnitRoundoff, lmax32, FLT_MIN};
    // bf16 keeps fp32's exponent range (its largest value is 3.39e38).
    case Precision::kBf16: return {kBf16UnitRoundoff, kBf16UnitRoundoff, std::log(3.3895313892515355e38), FLT_MIN};
  }
  return {u64, u64, lmax64, DBL_MIN};
}

}  // namespace mdnstab
