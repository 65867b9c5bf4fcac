// The recurrent MDN forward kernel (kernels/recurrent.cu) against the CPU reference
// (src/mdnstab/recurrent_ref.hpp) run in double on the same rounded inputs; outputs
// are NaN-poisoned before each launch so unwritten elements fail. Needs a CUDA device:
// without one the GPU cases are skipped with the reason; the check() cases always run.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "gpu_run.hpp"
#include "recurrent_case.hpp"

namespace mdnstab::test {
namespace {

// fp32 arithmetic against double: per step the error is a few ulps of the terms of
// two dot products over DK (~1e-7 relative), and with alpha, mu <= 1 it accumulates at
// most like a random walk over the steps the state remembers; over the <= 1200 steps
// here that stays below 2e-5 (the float CPU reference lands at a few 1e-7 on these cases).
constexpr double kTolF32 = 2e-5;
// bf16 outputs: one rounding to an 8-bit significand, half an ulp = 2^-9 relative.
constexpr double kTolBF16Out = std::ldexp(1.0, -9) + kTolF32;

void expect_matches(const Case& c, int64_t probe_interval = 0) {
  const CaseData d = make_case(c);
  const RefOut<double> ref = run_reference<double>(d, probe_interval);
  ASSERT_TRUE(ref.status.is_ok()) << ref.status.message;
  const GpuOut g = run_gpu(d, probe_interval);
  ASSERT_EQ(g.status, kn::Status::kOk) << g.why;
  const double tol_o = c.out == kn::DType::kBF16 ? kTolBF16Out : kTolF32;
  const Err eo = compare(g.o, ref.o), es = compare(g.s_final, ref.s_final), em = compare(g.m_final, ref.m_final);
  EXPECT_TRUE(eo.finite) << c.name << ": o has NaN/inf (unwritten elements stay NaN)";
  EXPECT_TRUE(es.finite && em.finite) << c.name << ": final state has NaN/inf";
  EXPECT_GT(eo.ref_norm, 0) << c.name << ": reference output is zero";
  EXPECT_LE(eo.rel, tol_o) << c.name << ": o relative error (max abs " << eo.max_abs << ")";
  EXPECT_LE(es.rel, kTolF32) << c.name << ": S_final relative error (max abs " << es.max_abs << ")";
  EXPECT_LE(em.rel, kTolF32) << c.name << ": M_final relative error (max abs " << em.max_abs << ")";
  if (probe_interval > 0) {
    ASSERT_EQ(g.norm_s.size(), ref.norm_s.size());
    for (size_t i = 0; i < ref.norm_s.size(); ++i) {
      if (std::isnan(ref.norm_s[i])) {  // slot past a sequence's end
        EXPECT_TRUE(std::isnan(g.norm_s[i]) && std::isnan(g.norm_m[i]) && std::isnan(g.max_o[i])) << c.name << " slot " << i;
        continue;
      }
      // Norms and max |o| of an fp32 state: the same bound as the state itself.
      EXPECT_NEAR(g.norm_s[i], ref.norm_s[i], kTolF32 * ref.norm_s[i] + 1e-30) << c.name << " norm_s slot " << i;
      EXPECT_NEAR(g.norm_m[i], ref.norm_m[i], kTolF32 * ref.norm_m[i] + 1e-30) << c.name << " norm_m slot " << i;
      // max |o| over a probe interval: each o carries the output error, bounded by
      // the output tolerance relative to the largest |o| of the whole run.
      EXPECT_NEAR(g.max_o[i], ref.max_o[i], tol_o * eo.ref_norm + 1e-30) << c.name << " max|o| slot " << i;
    }
    for (size_t i = 0; i < ref.first_bad.size(); ++i) EXPECT_EQ(g.first_bad[i], -1) << c.name << " pair " << i;
  }
}

TEST(GpuRecurrent, RandomF32RaggedShapes) {
  REQUIRE_GPU();
  Case c = named("f32 B2 T77 H3 DK100 DV300");
  c.B = 2; c.T = 77; c.H = 3; c.DK = 100; c.DV = 300;
  c.init_state = true;
  expect_matches(c);
}

TEST(GpuRecurrent, RandomBF16RaggedShapes) {
  REQUIRE_GPU();
  Case c = named("bf16 B2 T77 H3 DK100 DV300");
  c.B = 2; c.T = 77; c.H = 3; c.DK = 100; c.DV = 300;
  c.in = kn::DType::kBF16;
  c.init_state = true;
  c.seed = 2;
  expect_matches(c);
}

TEST(GpuRecurrent, LargestHeadEveryCtaWidth) {
  REQUIRE_GPU();
  for (int w : {1, 2, 4}) {
    Case c = named("f32 DK256 DV512 warps " + std::to_string(w));
    c.B = 1; c.T = 41; c.H = 2; c.DK = 256; c.DV = 512;
    c.init_state = true;
    c.warps = w;
    c.seed = 10 + w;
    expect_matches(c);
  }
}

TEST(GpuRecurrent, SmallHeadEveryCtaWidthBF16) {
  REQUIRE_GPU();
  for (int w : {1, 2, 4}) {
    Case c = named("bf16 DK128 DV200 warps " + std::to_string(w));
    c.B = 2; c.T = 29; c.H = 2; c.DK = 128; c.DV = 200;
    c.in = kn::DType::kBF16;
    c.warps = w;
    c.seed = 20 + w;
    expect_matches(c);
  }
}

TEST(GpuRecurrent, PerChannelBetaEtaBothPScales) {
  REQUIRE_GPU();
  for (auto ps : {kn::PScale::kAlpha, kn::PScale::kOne}) {
    for (bool bpc : {false, true}) {
      Case c = named(std::string("per-channel beta ") + (bpc ? "on" : "off") + " eta on, p-scale " +
                    (ps == kn::PScale::kAlpha ? "alpha" : "one"));
      c.B = 2; c.T = 45; c.H = 2; c.DK = 130; c.DV = 37;
      c.beta_pc = bpc;
      c.eta_pc = true;
      c.p_scale = ps;
      c.init_state = true;
      c.seed = 30 + bpc;
      expect_matches(c);
    }
  }
}

TEST(GpuRecurrent, PScaleOneScalarGates) {
  REQUIRE_GPU();
  Case c = named("p-scale one, scalar gates");
  c.B = 1; c.T = 100; c.H = 4; c.DK = 64; c.DV = 64;
  c.p_scale = kn::PScale::kOne;
  c.gates.eta_hi = 1.0;  // keeps beta * eta * rho_p <= 1: the state stays bounded
  expect_matches(c);
}

TEST(GpuRecurrent, VarlenWithEmptyAndOneTokenSequences) {
  REQUIRE_GPU();
  for (auto in : {kn::DType::kF32, kn::DType::kBF16}) {
    Case c = named(std::string("varlen ") + (in == kn::DType::kBF16 ? "bf16" : "f32"));
    c.seqlens = {13, 1, 40, 0, 9};
    c.H = 3; c.DK = 100; c.DV = 70;
    c.in = in;
    c.init_state = true;
    c.seed = 40;
    expect_matches(c, 4);
  }
}

TEST(GpuRecurrent, OddSizesBF16TwoByteRows) {
  REQUIRE_GPU();  // DK = 37 bf16 rows are only 2-byte aligned: the plain-load staging path
  Case c = named("bf16 DK37 DV19");
  c.B = 3; c.T = 23; c.H = 1; c.DK = 37; c.DV = 19;
  c.in = kn::DType::kBF16;
  c.beta_pc = true;
  c.seed = 50;
  expect_matches(c);
}

TEST(GpuRecurrent, NoL2NormCustomScale) {
  REQUIRE_GPU();
  Case c = named("no l2 norm, scale 0.05");
  c.B = 1; c.T = 30; c.H = 2; c.DK = 48; c.DV = 24;
  c.l2norm = false;
  c.scale = 0.05f;
  c.gates.beta_hi = 0.02;  // raw keys of norm ~7: a small step keeps the state bounded
  expect_matches(c);
}

TEST(GpuRecurrent, BF16Output) {
  REQUIRE_GPU();
  Case c = named("bf16 in, bf16 out");
  c.B = 2; c.T = 50; c.H = 2; c.DK = 128; c.DV = 256;
  c.in = c.out = kn::DType::kBF16;
  expect_matches(c);
}

TEST(GpuRecurrent, GatesAtTheEdges) {
  REQUIRE_GPU();
  struct Edge {
    const char* name;
    GateRange g;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const Edge edges[] = {
      {"alpha, mu near 1, eta near 2", {-1e-4, -1e-6, -1e-4, -1e-6, 0.0, 0.1, 1.95, 2.0}},
      {"alpha, mu near 0", {-7.0, -6.0, -7.0, -6.0, 0.5, 1.0, 0.0, 2.0}},
      {"alpha = mu = 0 exactly", {-inf, -inf, -inf, -inf, 1.0, 1.0, 2.0, 2.0}},
      {"alpha = mu = 1 exactly, beta 0", {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0}},
      {"alpha near 1, mu near 0, eta 2", {-1e-5, 0.0, -8.0, -6.0, 0.0, 1.0, 2.0, 2.0}},
  };
  uint64_t seed = 60;
  for (const Edge& e : edges) {
    for (auto in : {kn::DType::kF32, kn::DType::kBF16}) {
      Case c = named(std::string(e.name) + (in == kn::DType::kBF16 ? " bf16" : " f32"));
      c.B = 1; c.T = 150; c.H = 2; c.DK = 100; c.DV = 50;
      c.in = in;
      c.gates = e.g;
      c.init_state = true;
      c.seed = seed++;
      expect_matches(c);
    }
  }
}

TEST(GpuRecurrent, LongRunManyChunksWithProbes) {
  REQUIRE_GPU();
  Case c = named("T 1203, probes every 100");
  c.B = 1; c.T = 1203; c.H = 2; c.DK = 32; c.DV = 16;
  c.gates.log_alpha_lo = -0.05;
  c.gates.beta_hi = 0.5;
  c.gates.eta_hi = 1.0;
  expect_matches(c, 100);
}

// The exploding gate set of DESIGN.md section 4 (alpha .99, beta .9, mu .99, eta 1.9):
// the first non-finite step seen by the kernel's probes against the CPU reference's in
// fp32 (the kernel's state precision). With keys in two coordinates every dot product
// over DK adds the same nonzero terms in the same order on both sides, and the keys
// rotating in that plane make the state grow ~e^0.48 per step: the steps must be equal.
// With random keys (DK = 2, ~e^0.18 per step) the kernel's fused multiply-adds round
// once where the reference rounds a product first; near overflow such a product can
// overflow while the fused sum does not, so the kernel may overflow a few steps later,
// never earlier (seen on an H100, 2026-11-24: 2 steps later in 1 of 4 heads).
void expect_same_overflow(Case c, int64_t later_by_at_most = 0) {
  c.gates = {std::log(0.99), std::log(0.99), std::log(0.99), std::log(0.99), 0.9, 0.9, 1.9, 1.9};
  const CaseData d = make_case(c);
  const RefOut<float> ref = run_reference<float>(d, 16);
  ASSERT_TRUE(ref.status.is_ok()) << ref.status.message;
  const GpuOut g = run_gpu(d, 16);
  ASSERT_EQ(g.status, kn::Status::kOk) << g.why;
  ASSERT_EQ(g.first_bad.size(), ref.first_bad.size());
  for (size_t i = 0; i < ref.first_bad.size(); ++i) {
    EXPECT_GT(ref.first_bad[i], 0) << c.name << ": the reference did not overflow in pair " << i;
    EXPECT_GE(g.first_bad[i], ref.first_bad[i]) << c.name << " pair " << i;
    EXPECT_LE(g.first_bad[i], ref.first_bad[i] + later_by_at_most) << c.name << " pair " << i;
  }
  // Before the overflow the probe norms agree with the fp32 reference.
  const int64_t P = int64_t(ref.norm_s.size()) / int64_t(ref.first_bad.size());
  for (size_t i = 0; i < ref.first_bad.size(); ++i)
    for (int64_t p = 0; p < P && (p + 1) * 16 < ref.first_bad[i]; ++p) {
      const size_t s = i * P + p;
      EXPECT_NEAR(g.norm_s[s], ref.norm_s[s], 1e-4 * ref.norm_s[s]) << c.name << " pair " << i << " probe " << p;
    }
}

TEST(GpuRecurrent, OverflowStepMatchesReferenceRotatingKeys) {
  REQUIRE_GPU();
  for (int64_t dk : {128, 256}) {
    Case c = named("plane keys, theta 0.8, DK " + std::to_string(dk));
    c.B = 2; c.T = 400; c.H = 2; c.DK = dk; c.DV = 24;
    c.keys = Keys::kPlane;
    c.theta = 0.8;
    c.seed = 70;
    expect_same_overflow(c);
  }
}

TEST(GpuRecurrent, OverflowStepMatchesReferenceRandomKeysDK2) {
  REQUIRE_GPU();
  Case c = named("random keys, DK 2");
  c.B = 2; c.T = 1200; c.H = 2; c.DK = 2; c.DV = 16;
  c.seed = 80;
  expect_same_overflow(c, 8);
}

TEST(GpuRecurrent, RunHostSaysWhereItOverflowed) {
  REQUIRE_GPU();
  Case c = named("run_host overflow");
  c.B = 1; c.T = 400; c.H = 1; c.DK = 2; c.DV = 8;
  c.keys = Keys::kPlane;
  c.theta = 0.8;
  c.gates = {std::log(0.99), std::log(0.99), std::log(0.99), std::log(0.99), 0.9, 0.9, 1.9, 1.9};
  const CaseData d = make_case(c);
  std::vector<float> o(c.T * c.DV);
  std::vector<double> ns(25), nm(25);
  std::vector<float> mo(25);
  std::vector<int64_t> fb(1);
  kn::RecurrentParams p;
  p.steps = c.T; p.dk = c.DK; p.dv = c.DV;
  p.q = d.q.data(); p.k = d.k.data(); p.v = d.v.data();
  p.log_alpha = d.la.data(); p.log_mu = d.lm.data(); p.beta = d.beta.data(); p.eta = d.eta.data();
  p.o = o.data();
  p.probe_interval = 16;
  p.probe_norm_s = ns.data(); p.probe_norm_m = nm.data(); p.probe_max_abs_o = mo.data(); p.first_nonfinite = fb.data();
  std::string why;
  EXPECT_EQ(kn::run_host(p, &why), kn::Status::kNonFinite);
  ASSERT_GT(fb[0], 0);
  EXPECT_NE(why.find("step " + std::to_string(fb[0])), std::string::npos) << why;
}

// check() runs on the host: these cases need no GPU.
TEST(GpuRecurrentCheck, NamesTheBadValue) {
  float dummy = 0;
  kn::RecurrentParams ok;
  ok.steps = 4; ok.dk = 8; ok.dv = 8;
  ok.q = ok.k = ok.v = &dummy;
  ok.log_alpha = ok.log_mu = ok.beta = ok.eta = &dummy;
  ok.o = &dummy;
  std::string why;
  EXPECT_EQ(kn::check(ok, &why), kn::Status::kOk) << why;
  auto expect_bad = [&](kn::RecurrentParams p, kn::Status want, const std::string& named) {
    std::string w;
    EXPECT_EQ(kn::check(p, &w), want) << named;
    EXPECT_NE(w.find(named), std::string::npos) << w;
  };
  kn::RecurrentParams p = ok;
  p.dk = 257;
  expect_bad(p, kn::Status::kUnsupported, "dk = 257");
  p = ok; p.dv = 0;
  expect_bad(p, kn::Status::kInvalidArgument, "dv = 0");
  p = ok; p.heads = -1;
  expect_bad(p, kn::Status::kInvalidArgument, "heads = -1");
  p = ok; p.q = nullptr;
  expect_bad(p, kn::Status::kInvalidArgument, "q, k and v");
  p = ok; p.scale = INFINITY;
  expect_bad(p, kn::Status::kInvalidArgument, "scale");
  p = ok; p.probe_interval = 8;
  expect_bad(p, kn::Status::kInvalidArgument, "probe_interval = 8");
  p = ok; p.batch = 2; p.cu_seqlens = reinterpret_cast<const int64_t*>(&dummy); p.num_seqs = 1;
  expect_bad(p, kn::Status::kInvalidArgument, "batch = 2");
  p = ok; p.warps_per_cta = 3;
  expect_bad(p, kn::Status::kInvalidArgument, "warps_per_cta = 3");
}

TEST(GpuRecurrentCheck, NoDeviceIsReportedNotCrashed) {
  std::string why;
  if (kn::device_count(&why) > 0) GTEST_SKIP() << "a GPU is present: " << kn::device_name();
  EXPECT_FALSE(why.empty());
  float dummy = 0;
  kn::RecurrentParams p;
  p.steps = 1; p.dk = 1; p.dv = 1;
  p.q = p.k = p.v = &dummy;
  p.log_alpha = p.log_mu = p.beta = p.eta = &dummy;
  p.o = &dummy;
  std::string w;
  EXPECT_EQ(kn::run_host(p, &w), kn::Status::kNoDevice);
  EXPECT_FALSE(w.empty());
}

}  // namespace
}  // namespace mdnstab::test
