// The chunkwise MDN forward kernels (kernels/chunk.cu) against the CPU reference
// recurrence (src/mdnstab/recurrent_ref.hpp) in double on the same rounded inputs,
// over ragged shapes, both p-scales, initial states and the gates where the paper's
// chunkwise reordering overflows or loses every digit (DESIGN.md section 5). Outputs
// are NaN-poisoned before each launch. Needs a CUDA device: without one the GPU cases
// are skipped with the reason; the check_chunk() cases always run.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "gpu_run.hpp"
#include "mdnstab/chunk_ref.hpp"
#include "recurrent_case.hpp"

namespace mdnstab::test {
namespace {

// Matrix products take tf32 operands (unit roundoff u = 2^-11) with fp32 sums. A chunk
// chains four products into its output and state (k^S, T(.), q^S or Gamma o q^.k~ U,
// k^T U), each operand rounded once: about 8u = 3.9e-3 relative, norm-wise, per chunk;
// with alpha, mu <= 1 older chunks' errors decay. fp32 element-wise work is ~1e-6.
constexpr double kTolTf32 = 8 * 0x1p-11;

// An earlier chunk's error persists as far as the state remembers it: decaying by at
// least r per chunk (r = the slowest gate's product over a chunk), the errors add up
// to at most 1 / (1 - r) chunks' worth, and to one per chunk where a gate is 1.
double remembered_chunks(double slowest_log_gate, int64_t T) {
  const double chunks = std::ceil(double(T) / 64.0);
  const double r = std::exp(64.0 * slowest_log_gate);
  return r >= 1.0 ? chunks : std::min(chunks, 1.0 / (1.0 - r));
}

// Runs the case through the chunkwise kernels, checks it against the reference (the
// tf32 bound times `memory` chunks) and returns the output's relative error (printed
// for the notes).
double expect_matches(const Case& c, double memory = 1.0) {
  const CaseData d = make_case(c);
  const RefOut<double> ref = run_reference<double>(d);
  EXPECT_TRUE(ref.status.is_ok()) << ref.status.message;
  const GpuOut g = run_gpu(d, 0, kn::Algorithm::kChunk);
  EXPECT_EQ(g.status, kn::Status::kOk) << g.why;
  if (g.status != kn::Status::kOk) return NAN;
  // A bf16 output adds one rounding to an 8-bit significand, half an ulp = 2^-9.
  const double tol = memory * kTolTf32, tol_o = c.out == kn::DType::kBF16 ? tol + 0x1p-9 : tol;
  const Err eo = compare(g.o, ref.o), es = compare(g.s_final, ref.s_final), em = compare(g.m_final, ref.m_final);
  EXPECT_TRUE(eo.finite) << c.name << ": o has NaN/inf (unwritten elements stay NaN)";
  EXPECT_TRUE(es.finite && em.finite) << c.name << ": final state has NaN/inf";
  if (d.tokens() > 0) {
    EXPECT_GT(eo.ref_norm, 0) << c.name << ": reference output is zero";
  }
  EXPECT_LE(eo.rel, tol_o) << c.name << ": o relative error (max abs " << eo.max_abs << ")";
  EXPECT_LE(es.rel, tol) << c.name << ": S_final relative error (max abs " << es.max_abs << ")";
  EXPECT_LE(em.rel, tol) << c.name << ": M_final relative error (max abs " << em.max_abs << ")";
  std::printf("[ chunk    ] %-44s o %.3e  S %.3e  M %.3e\n", c.name.c_str(), eo.rel, es.rel, em.rel);
  return eo.rel;
}

TEST(GpuChunk, RandomF32RaggedShapesWithInitialState) {
  REQUIRE_GPU();
  Case c = named("f32 B2 T300 H3 DK128 DV96 s0");
  c.B = 2; c.T = 300; c.H = 3; c.DK = 128; c.DV = 96;
  c.init_state = true;
  expect_matches(c);
}

TEST(GpuChunk, RandomBF16SmallHeadsBothOutputs) {
  REQUIRE_GPU();
  for (auto out : {kn::DType::kF32, kn::DType::kBF16}) {
    Case c = named(out == kn::DType::kBF16 ? "bf16 in/out DK64 DV64 T256" : "bf16 in DK64 DV64 T256");
    c.B = 2; c.T = 256; c.H = 2; c.DK = 64; c.DV = 64;
    c.in = kn::DType::kBF16;
    c.out = out;
    c.seed = 3;
    expect_matches(c);
  }
}

TEST(GpuChunk, PaddedKeyAndValueWidths) {
  REQUIRE_GPU();
  for (int dk : {8, 48, 100}) {
    Case c = named("DK" + std::to_string(dk) + " DV200 T131");
    c.T = 131; c.H = 2; c.DK = dk; c.DV = 200;
    c.init_state = true;
    c.seed = 10 + dk;
    expect_matches(c);
  }
  // Widths that are not multiples of 4 take the element-by-element loads and stores.
  for (auto in : {kn::DType::kF32, kn::DType::kBF16}) {
    Case c = named(in == kn::DType::kBF16 ? "bf16 in/out DK30 DV70 T99" : "f32 DK30 DV70 T99");
    c.T = 99; c.H = 2; c.DK = 30; c.DV = 70;
    c.in = in;
    c.out = in;
    c.init_state = true;
    c.seed = 61;
    expect_matches(c);
  }
}

TEST(GpuChunk, ShortSequencesAndExactChunks) {
  REQUIRE_GPU();
  for (int T : {1, 63, 64, 65, 128}) {
    Case c = named(std::to_string(T) + " tokens");
    c.B = 3; c.T = T; c.H = 1; c.DK = 32; c.DV = 40;
    c.init_state = T % 2 == 1;
    c.seed = 20 + T;
    expect_matches(c);
  }
}

TEST(GpuChunk, PScaleOneNoL2NormCustomScale) {
  REQUIRE_GPU();
  Case c = named("p-scale one, no L2 norm, scale 0.3");
  c.T = 200; c.H = 2; c.DK = 64; c.DV = 64;
  c.p_scale = kn::PScale::kOne;
  c.l2norm = false;
  c.scale = 0.3f;
  // Without the norm, |k|^2 ~ DK: keep the delta-rule step contracting (beta eta |k|^2 < 2).
  c.gates.beta_lo = 0.0; c.gates.beta_hi = 0.01;
  c.gates.eta_lo = 0.5; c.gates.eta_hi = 1.0;
  expect_matches(c);
  Case d = named("p-scale one with the L2 norm");
  d.T = 200; d.H = 2; d.DK = 128; d.DV = 64;
  d.p_scale = kn::PScale::kOne;
  d.gates.eta_hi = 1.0;  // beta eta rho < 2 keeps A_par's frozen spectrum inside the circle
  d.seed = 5;
  expect_matches(d);
}

// DESIGN.md section 5's gates (C = 64, T = 1024, beta = 0.1, eta = 1, fp32 inputs):
// the paper's reordering in fp32 (chunk_ref, the emulation checked against the
// reference kernel) loses every digit or overflows there; this kernel keeps the
// tf32 error. The emulation's failure is asserted too, so the case stays a hazard.
TEST(GpuChunk, ExactWhereThePapersReorderingFails) {
  REQUIRE_GPU();
  struct G {
    double la, lm;
    bool paper_fails;
  };
  for (const G& g : {G{-1.0, -1.0, false}, G{-0.5, -1.0, true}, G{-0.01, -2.0, true}, G{-0.001, -8.0, true}}) {
    Case c = named("log_alpha " + std::to_string(g.la) + " log_mu " + std::to_string(g.lm));
    c.T = 1024; c.H = 1; c.DK = 128; c.DV = 64;
    c.gates.log_alpha_lo = c.gates.log_alpha_hi = g.la;
    c.gates.log_mu_lo = c.gates.log_mu_hi = g.lm;
    c.gates.beta_lo = c.gates.beta_hi = 0.1;
    c.gates.eta_lo = c.gates.eta_hi = 1.0;
    c.seed = 40;
    expect_matches(c);
    // The paper's algorithm on the same rounded inputs, in fp32.
    const CaseData d = make_case(c);
    const RefOut<double> ref = run_reference<double>(d);
    std::vector<double> o(ref.o.size(), 0.0);
    RecurrentArgs<double> a;
    a.batch = 1; a.heads = 1; a.steps = static_cast<int>(c.T);
    a.dk = static_cast<int>(c.DK); a.dv = static_cast<int>(c.DV);
    a.q = d.qd.data(); a.k = d.kd.data(); a.v = d.vd.data();
    a.log_alpha = d.lad.data(); a.log_mu = d.lmd.data(); a.beta = d.betad.data(); a.eta = d.etad.data();
    a.o = o.data();
    ChunkOptions opt;
    opt.chunk = 64;
    ASSERT_TRUE(chunk_ref(Precision::kFp32, a, opt).is_ok());
    const Err paper = compare(o, ref.o);
    std::printf("[ chunk    ] %-44s the paper's reordering in fp32: o %.3e%s\n", c.name.c_str(), paper.rel,
                paper.finite ? "" : " (non-finite)");
    if (g.paper_fails) {
      EXPECT_TRUE(!paper.finite || paper.rel > 0.1) << c.name << ": no longer a hazard";
    }
  }
}

// The whole closed gate range at once: one sequence per grid point (constant gates),
// log_alpha and log_mu over {-inf, -20, -8, -3, -1, -0.5, -0.1, -0.01, -0.001, 0},
// beta over {0, 0.1, 1}, eta over {0.5, 2}: 600 sequences of 192 tokens in one
// launch. Every sequence's output must keep the tf32 bound against the double
// reference (times 3 chunks: alpha or mu = 1 remembers every chunk), and none may be
// non-finite where the reference is finite.
TEST(GpuChunk, ExactOverTheGateGrid) {
  REQUIRE_GPU();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> logs = {-inf, -20, -8, -3, -1, -0.5, -0.1, -0.01, -0.001, 0};
  const std::vector<double> betas = {0.0, 0.1, 1.0}, etas = {0.5, 2.0};
  Case c = named("gate grid");
  c.B = static_cast<int64_t>(logs.size() * logs.size() * betas.size() * etas.size());
  c.T = 192; c.H = 1; c.DK = 32; c.DV = 64;
  c.init_state = true;
  c.seed = 77;
  CaseData d = make_case(c);
  std::vector<std::array<double, 4>> point(c.B);
  int64_t b = 0;
  for (double la : logs)
    for (double lm : logs)
      for (double be : betas)
        for (double et : etas) point[b++] = {la, lm, be, et};
  for (b = 0; b < c.B; ++b)
    for (int64_t t = 0; t < c.T; ++t) {
      const size_t g = b * c.T + t;
      d.la[g] = static_cast<float>(point[b][0]);
      d.lm[g] = static_cast<float>(point[b][1]);
      d.beta[g] = static_cast<float>(point[b][2]);
      d.eta[g] = static_cast<float>(point[b][3]);
      d.lad[g] = d.la[g];
      d.lmd[g] = d.lm[g];
      d.betad[g] = d.beta[g];
      d.etad[g] = d.eta[g];
    }
  const RefOut<double> ref = run_reference<double>(d);
  ASSERT_TRUE(ref.status.is_ok()) << ref.status.message;
  const GpuOut g = run_gpu(d, 0, kn::Algorithm::kChunk);
  ASSERT_EQ(g.status, kn::Status::kOk) << g.why;
  const size_t per = c.T * c.DV;
  double worst = 0;
  int64_t worst_b = -1, skipped = 0;
  for (b = 0; b < c.B; ++b) {
    const std::vector<double> x(g.o.begin() + b * per, g.o.begin() + (b + 1) * per);
    const std::vector<double> r(ref.o.begin() + b * per, ref.o.begin() + (b + 1) * per);
    const Err e = compare(x, r);
    if (!(e.ref_norm < 1e30)) {  // grows past fp32's range (not reached on this grid)
      ++skipped;
      continue;
    }
    EXPECT_TRUE(e.finite) << "grid point " << b << ": non-finite output";
    EXPECT_LE(e.rel, remembered_chunks(0.0, c.T) * kTolTf32)
        << "log_alpha " << point[b][0] << " log_mu " << point[b][1] << " beta " << point[b][2] << " eta "
        << point[b][3];
    if (e.rel > worst) {
      worst = e.rel;
      worst_b = b;
    }
  }
  EXPECT_EQ(skipped, 0);
  ASSERT_GE(worst_b, 0);
  std::printf("[ chunk    ] gate grid, %ld sequences: worst o %.3e at log_alpha %g log_mu %g beta %g eta %g\n",
              long(c.B), worst, point[worst_b][0], point[worst_b][1], point[worst_b][2], point[worst_b][3]);
}

TEST(GpuChunk, GatesAtTheEdges) {
  REQUIRE_GPU();
  // alpha = 0 (log -inf), mu = 1, beta = 1, eta = 2 at once; then tiny gates.
  Case c = named("alpha 0, mu 1, beta 1, eta 2");
  c.T = 150; c.H = 1; c.DK = 64; c.DV = 64;
  c.gates.log_alpha_lo = c.gates.log_alpha_hi = -std::numeric_limits<double>::infinity();
  c.gates.log_mu_lo = c.gates.log_mu_hi = 0.0;
  c.gates.beta_lo = c.gates.beta_hi = 1.0;
  c.gates.eta_lo = c.gates.eta_hi = 2.0;
  expect_matches(c);
  Case t = named("log_alpha, log_mu in [-60, -20]");
  t.T = 150; t.H = 1; t.DK = 64; t.DV = 64;
  t.gates.log_alpha_lo = -60; t.gates.log_alpha_hi = -20;
  t.gates.log_mu_lo = -60; t.gates.log_mu_hi = -20;
  t.init_state = true;
  expect_matches(t);
  Case s = named("alpha = mu = 1, beta = 0: the state is kept");
  s.T = 100; s.H = 1; s.DK = 32; s.DV = 64;
  s.gates.log_alpha_lo = s.gates.log_alpha_hi = 0.0;
  s.gates.log_mu_lo = s.gates.log_mu_hi = 0.0;
  s.gates.beta_lo = s.gates.beta_hi = 0.0;
  s.init_state = true;
  expect_matches(s);
}

TEST(GpuChunk, LongSequenceSlowGates) {
  REQUIRE_GPU();
  // 40 chunks with a memory of hundreds of tokens: errors of old chunks must decay,
  // not pile up.
  Case c = named("T2560 log_alpha, log_mu in [-0.01, 0]");
  c.T = 2560; c.H = 2; c.DK = 128; c.DV = 64;
  c.gates.log_alpha_lo = -0.01; c.gates.log_alpha_hi = 0.0;
  c.gates.log_mu_lo = -0.01; c.gates.log_mu_hi = 0.0;
  c.gates.beta_hi = 0.5;
  c.gates.eta_hi = 1.0;
  c.in = kn::DType::kBF16;
  c.seed = 7;
  expect_matches(c, remembered_chunks(-0.01, c.T));
}

TEST(GpuChunk, GrowingStateRotatingKeys) {
  REQUIRE_GPU();
  // DESIGN.md section 4's gates with keys rotating in a plane: the state grows about
  // 1.62 x per step (1e25 after 120 steps, inside fp32's range) and the relative
  // error must stay put while it does.
  Case c = named("growing: 0.99/0.9/0.99/1.9, plane keys T120");
  c.T = 120; c.H = 1; c.DK = 128; c.DV = 64;
  c.gates.log_alpha_lo = c.gates.log_alpha_hi = std::log(0.99);
  c.gates.log_mu_lo = c.gates.log_mu_hi = std::log(0.99);
  c.gates.beta_lo = c.gates.beta_hi = 0.9;
  c.gates.eta_lo = c.gates.eta_hi = 1.9;
  c.keys = Keys::kPlane;
  c.theta = 0.8;
  expect_matches(c);
}

TEST(GpuChunk, NoTokensKeepsTheInitialState) {
  REQUIRE_GPU();
  Case c = named("T0 with s0");
  c.B = 2; c.T = 0; c.H = 2; c.DK = 16; c.DV = 16;
  c.init_state = true;
  const CaseData d = make_case(c);
  const GpuOut g = run_gpu(d, 0, kn::Algorithm::kChunk);
  ASSERT_EQ(g.status, kn::Status::kOk) << g.why;
  ASSERT_EQ(g.s_final.size(), d.s0.size());
  for (size_t i = 0; i < d.s0.size(); ++i) {
    EXPECT_EQ(g.s_final[i], d.s0d[i]) << i;
    EXPECT_EQ(g.m_final[i], d.m0d[i]) << i;
  }
}

TEST(GpuChunkCheck, NamesWhatItDoesNotTake) {
  kn::RecurrentParams p;
  p.batch = 1; p.steps = 8; p.heads = 1; p.dk = 256; p.dv = 8;
  int dummy = 0;
  float f = 0;
  p.q = p.k = p.v = &dummy;
  p.log_alpha = p.log_mu = p.beta = p.eta = &f;
  p.o = &dummy;
  std::string why;
  EXPECT_EQ(kn::check_chunk(p, &why), kn::Status::kUnsupported);
  EXPECT_NE(why.find("dk = 256"), std::string::npos) << why;
  p.dk = 64;
  EXPECT_EQ(kn::check_chunk(p, &why), kn::Status::kOk) << why;
  p.beta_per_channel = true;
  EXPECT_EQ(kn::check_chunk(p, &why), kn::Status::kUnsupported);
  EXPECT_NE(why.find("per value channel"), std::string::npos) << why;
  p.beta_per_channel = false;
  int64_t cu[2] = {0, 8};
  p.cu_seqlens = cu;
  p.num_seqs = 1;
  EXPECT_EQ(kn::check_chunk(p, &why), kn::Status::kUnsupported);
  EXPECT_NE(why.find("cu_seqlens"), std::string::npos) << why;
  p.cu_seqlens = nullptr;
  p.num_seqs = 0;
  p.probe_interval = 4;
  double d = 0;
  float pf = 0;
  int64_t fb = 0;
  p.probe_norm_s = p.probe_norm_m = &d;
  p.probe_max_abs_o = &pf;
  p.first_nonfinite = &fb;
  EXPECT_EQ(kn::check_chunk(p, &why), kn::Status::kUnsupported);
  EXPECT_NE(why.find("probes"), std::string::npos) << why;
  p.probe_interval = 0;
  p.dv = 0;  // the recurrent checks come first
  EXPECT_EQ(kn::check_chunk(p, &why), kn::Status::kInvalidArgument);
  EXPECT_NE(why.find("dv = 0"), std::string::npos) << why;
}

}  // namespace
}  // namespace mdnstab::test
