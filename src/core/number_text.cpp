// write_shortest(): Dragonbox's shortest decimal (significand, exponent), laid out
// with fmt's rules for "{}" but without its general machinery (locale, grouping,
// padding), which costs more than the digits themselves. fmt::detail::dragonbox is
// fmt's internal API (fmt 9 here): a newer fmt that moves it breaks the build, not the
// text, and tests/test_number_text.cpp holds the text to fmt's own.
#include "mdnstab/number_text.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

namespace mdnstab {

namespace {

constexpr char kPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

constexpr std::uint64_t kPow10[18] = {1ULL,
                                      10ULL,
                                      100ULL,
                                      1000ULL,
                                      10000ULL,
                                      100000ULL,
                                      1000000ULL,
                                      10000000ULL,
                                      100000000ULL,
                                      1000000000ULL,
                                      10000000000ULL,
                                      100000000000ULL,
                                      1000000000000ULL,
                                      10000000000000ULL,
                                      100000000000000ULL,
                                      1000000000000000ULL,
                                      10000000000000000ULL,
                                      100000000000000000ULL};

// Digits of 1 <= x < 10^17: floor(log10(x)) is bit_width * log10(2), give or take one.
int digit_count(std::uint64_t x) {
  const int t = (int(std::bit_width(x)) * 1233) >> 12;
  return t + (x >= kPow10[t]);
}

void put2(char* d, unsigned v) { std::memcpy(d, kPairs + 2 * v, 2); }

__extension__ typedef unsigned __int128 u128;

// The 8 decimal digits of b < 10^8 as ASCII, the first digit in the lowest byte:
// split into halves, pairs and digits a whole 64-bit word at a time (each step's
// lanes are wide enough that no product carries into the next lane).
std::uint64_t ascii8(std::uint32_t b) {
  std::uint64_t v = (b / 10000) | (std::uint64_t(b % 10000) << 32);  // 4 + 4
  std::uint64_t q = ((v * 10486) >> 20) & 0x0000007F0000007FULL;    // / 100 below 43699
  v = q | ((v - q * 100) << 16);                                       // 2 + 2 per half
  q = ((v * 103) >> 10) & 0x000F000F000F000FULL;                      // / 10 below 179
  v = q | ((v - q * 10) << 8);                                         // 1 + 1 per pair
  return v | 0x3030303030303030ULL;
}

// The lowest byte of a word is stored first: the text's order above.
static_assert(std::endian::native == std::endian::little, "write_shortest assumes a little-endian CPU");
void store16(char* p, u128 x) { std::memcpy(p, &x, 16); }

}  // namespace

// The digits are built in registers and only stored, never stored and read back:
// a load spanning several recent small stores stalls (store forwarding fails) for
// longer than the digits take. Text is moved by 16-byte stores, some overlapping,
// which is why the caller leaves kShortestRoom bytes.
char* write_shortest(char* p, double v) {
  if (std::signbit(v)) *p++ = '-';
  const double a = std::fabs(v);
  if (std::isnan(v)) {
    std::memcpy(p, "nan", 3);
    return p + 3;
  }
  if (std::isinf(a)) {
    std::memcpy(p, "inf", 3);
    return p + 3;
  }
  if (a == 0.0) {
    *p = '0';
    return p + 1;
  }
  const auto dec = fmt::detail::dragonbox::to_decimal(a);
  const std::uint64_t sig = dec.significand;  // < 10^17
  const int n = digit_count(sig);
  // S: the first (up to) 16 significant digits, the first in the lowest byte; c16
  // the 17th where there are 17.
  const std::uint64_t top = sig / 100000000;
  const u128 t = u128(ascii8(std::uint32_t(top % 100000000))) | (u128(ascii8(std::uint32_t(sig % 100000000))) << 64);
  // Both forms, then a select: whether there are 16 or 17 digits is a coin toss for
  // most doubles, and a branch on it mispredicts half the time.
  const bool full = n == 17;
  const u128 s17 = u128('0' + top / 100000000) | (t << 8);
  const u128 s16 = t >> (8 * (full ? 0 : 16 - n));
  const u128 S = full ? s17 : s16;
  const char c16 = full ? char(std::uint64_t(t >> 120)) : char(0);
  const int out_exp = dec.exponent + n - 1;  // decimal exponent of the first digit
  if (out_exp < -4 || out_exp >= 16) {       // d[.ddd]e+XX
    store16(p + 1, S);
    p[17] = c16;
    p[0] = char(S);
    p[1] = '.';
    p += n == 1 ? 1 : n + 1;
    *p++ = 'e';
    int e = out_exp;
    *p++ = e < 0 ? '-' : '+';
    if (e < 0) e = -e;
    if (e >= 100) {
      *p++ = char('0' + e / 100);
      e %= 100;
    }
    put2(p, unsigned(e));
    return p + 2;
  }
  if (dec.exponent >= 0) {  // 1234e2 -> 123400 (at most 16 digits in all)
    store16(p, S);
    std::memcpy(p + n, "0000000000000000", 16);
    return p + n + dec.exponent;
  }
  const int whole = n + dec.exponent;  // digits before the point
  if (whole > 0) {                     // 1234e-2 -> 12.34
    store16(p, S);
    // (whole = 16 only with 17 digits: then only the 17th follows the point.)
    const u128 frac = whole < 16 ? S >> (8 * whole) : u128(0);
    store16(p + whole + 1, frac | (u128(std::uint8_t(c16)) << (8 * (16 - whole))));
    p[whole] = '.';
    return p + n + 1;
  }
  // 1234e-6 -> 0.001234 (at most 3 zeros after the point)
  std::memcpy(p, "0.000", 5);
  p += 2 - whole;
  store16(p, S);
  p[16] = c16;
  return p + n;
}

}  // namespace mdnstab
