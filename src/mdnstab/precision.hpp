// The arithmetic a chunkwise kernel runs in (DESIGN.md section 5): its name,
// unit roundoff and exponent range, shared by the chunk emulation (chunk_ref)
// and the safety rule (chunk_safety). Tested in tests/test_chunk_safety.cpp.
#pragma once

#include <string_view>

#include "mdnstab/status.hpp"

namespace mdnstab {

// kFp64, kFp32: every operation in that type. kTf32: fp32, but the operands of
// every matrix product (Triton's tl.dot) rounded to tf32, as Triton does for fp32
// inputs by default. kBf16: every operation's result rounded to bf16, matrix
// products accumulated in fp32 as tensor cores do.
enum class Precision { kFp64, kFp32, kTf32, kBf16 };

std::string_view to_string(Precision p);
// "fp64", "fp32", "tf32" or "bf16".
Result<Precision> parse_precision(std::string_view s);

struct PrecisionTraits {
  double unit_roundoff;          // of elementwise arithmetic (exp, log, sums of gates)
  double product_unit_roundoff;  // of matrix-product operands
  double log_max;                // log of the largest finite value: exp(x) overflows past it
  double min_normal;             // the smallest positive normal value (below: subnormals, then 0)
};
PrecisionTraits traits(Precision p);

}  // namespace mdnstab
