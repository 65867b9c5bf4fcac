// The shortest text that reads back as the same double, exactly as fmt's "{}"
// writes it (fixed notation for decimal exponents in [-4, 16), else d.ddde+XX), at
// a fraction of the cost: the CSV writers format hundreds of millions of numbers.
// Digits from fmt's Dragonbox. Tested against fmt::format("{}") in
// tests/test_number_text.cpp.
#pragma once

namespace mdnstab {

// The longest text: "-1.2345678901234567e-308" is 24 characters.
inline constexpr int kShortestMax = 24;
// Bytes write_shortest() may write at p: it moves digits by fixed-size copies, and
// what lies past the returned end is scratch for the caller to overwrite.
inline constexpr int kShortestRoom = 64;

// Writes v at p (no terminator) and returns the end: "nan", "inf", "-inf", "0",
// "-0", "0.001", "1.5e+300", ...
char* write_shortest(char* p, double v);

}  // namespace mdnstab
