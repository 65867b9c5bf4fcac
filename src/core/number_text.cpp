// write_shortest(): Dragonbox's shortest decimal (significand, exponent), laid out
// with fmt's rules for "{}" but without its general machinery (locale, grouping,
// padding), which costs more than the digits themselves. The digits are made as
// a fixed 17 with independent divisions (no chain of / 10 or / 100) and moved by
// fixed-size copies, which is why the caller leaves kShortestRoom bytes of room.
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

void put8(char* d, std::uint32_t b) {  // b < 10^8, zero-padded
  const std::uint32_t hi = b / 10000, lo = b % 10000;
  put2(d, hi / 100);
  put2(d + 2, hi % 100);
  put2(d + 4, lo / 100);
  put2(d + 6, lo % 100);
}

// 32 bytes from src to dst (both with room): one copy whatever the length used.
void copy32(char* dst, const char* src) { std::memcpy(dst, src, 32); }

}  // namespace

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
  // All 17 digits, zero-padded, then room for a 32-byte copy from any of them.
  char buf[17 + 32];
  std::memset(buf + 17, 0, 32);  // what the copies carry past the digits: defined
  const std::uint64_t top = sig / 100000000;
  buf[0] = char('0' + top / 100000000);
  put8(buf + 1, std::uint32_t(top % 100000000));
  put8(buf + 9, std::uint32_t(sig % 100000000));
  const char* dg = buf + 17 - n;  // the n significant digits
  const int out_exp = dec.exponent + n - 1;  // decimal exponent of the first digit
  if (out_exp < -4 || out_exp >= 16) {  // d[.ddd]e+XX
    p[0] = dg[0];
    p[1] = '.';
    copy32(p + 2, dg + 1);
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
    copy32(p, dg);
    std::memset(p + n, '0', 16);
    return p + n + dec.exponent;
  }
  const int whole = n + dec.exponent;  // digits before the point
  if (whole > 0) {                     // 1234e-2 -> 12.34
    copy32(p, dg);
    p[whole] = '.';
    copy32(p + whole + 1, dg + whole);
    return p + n + 1;
  }
  // 1234e-6 -> 0.001234 (at most 3 zeros after the point)
  std::memcpy(p, "0.000", 5);
  p += 2 - whole;
  copy32(p, dg);
  return p + n;
}

}  // namespace mdnstab
