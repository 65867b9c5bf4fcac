// validate (src/mdnstab/validate.hpp) on the CPU backend: true predictions agree
// with the measurements for certified, refuted and random-unstable gates; each kind
// of planted wrong prediction (gamma too small, a shifted exponent, a wrong witness,
// an inconsistent verdict) is flagged on its row and only there; two seeds agree with
// each other; saved predictions round-trip and reproduce the same measurements.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "mdnstab/validate.hpp"

namespace mdnstab {
namespace {

Gates lin(double a, double b, double m, double e) { return Gates::from_linear(a, b, m, e).value; }

ValidateOptions small() {
  ValidateOptions o;
  o.dk = 8;
  o.steps = 3000;
  o.random_heads = 8;
  o.full_steps = 1500;
  o.cpu_steps = 3000;
  o.cpu_chains = 8;
  o.threads = 2;
  return o;
}

std::vector<ValidateRow> rows() {
  return {{{lin(0.9, 0.5, 0.5, 1.0)}, "certified"},
          {{lin(0.99, 0.9, 0.99, 1.9)}, "refuted, random keys grow"},
          {{lin(0.999, 0.5, 0.766, 1.2)}, "refuted, random keys decay"},
          {{lin(0.95, 0.5, 0.9, 1.5), lin(0.7, 0.9, 0.99, 1.9)}, "a set drawn per step"}};
}

struct Outcome {
  std::vector<Prediction> pred;
  ValidationReport rep;
};

Outcome run(const std::vector<ValidateRow>& r, const ValidateOptions& o, std::vector<Prediction>* planted = nullptr) {
  Outcome out;
  auto p = predict(r, o);
  EXPECT_TRUE(p.is_ok()) << p.status.message;
  out.pred = planted ? *planted : p.value;
  auto backend = cpu_backend(o.threads);
  auto v = validate(r, out.pred, o, *backend);
  EXPECT_TRUE(v.is_ok()) << v.status.message;
  out.rep = std::move(v.value);
  return out;
}

std::vector<std::string> failed(const RowResult& rr) {
  std::vector<std::string> f;
  for (const Check& c : rr.checks)
    if (c.state == Check::State::kFail) f.push_back(c.name + ": " + c.detail);
  return f;
}

const Check& find(const RowResult& rr, const std::string& name) {
  for (const Check& c : rr.checks)
    if (c.name == name) return c;
  static Check none;
  ADD_FAILURE() << "no check " << name;
  return none;
}

TEST(Validate, TruePredictionsAgreeWithTheMeasurements) {
  const auto r = rows();
  const Outcome a = run(r, small());
  ASSERT_EQ(a.rep.rows.size(), r.size());
  for (size_t i = 0; i < r.size(); ++i) {
    const RowResult& rr = a.rep.rows[i];
    EXPECT_TRUE(rr.agrees()) << r[i].label << ": " << ::testing::PrintToString(failed(rr));
  }
  EXPECT_EQ(a.rep.disagreements(), 0);
  // The checks that carry the claims ran (not skipped) where they apply.
  EXPECT_EQ(a.pred[0].cert.verdict, Verdict::kCertified);
  EXPECT_EQ(find(a.rep.rows[0], "full_bounded").state, Check::State::kPass);
  EXPECT_EQ(a.pred[1].cert.verdict, Verdict::kRefuted);
  EXPECT_EQ(find(a.rep.rows[1], "witness_rate").state, Check::State::kPass);
  EXPECT_GT(a.rep.rows[1].measured.witness_rate, 0.0);  // the witness grows
  // Random keys grow at DK = 8 for the design example: the full kernel overflows.
  EXPECT_EQ(find(a.rep.rows[1], "full_vs_exponent").state, Check::State::kPass);
  EXPECT_GT(a.rep.rows[1].measured.first_nonfinite, 0);
  for (const RowResult& rr : a.rep.rows) EXPECT_EQ(find(rr, "random_exponent").state, Check::State::kPass);
  EXPECT_EQ(find(a.rep.rows[3], "rotation_rate").state, Check::State::kSkip);  // no closed form for a drawn set
}

TEST(Validate, PlantedWrongPredictionsAreFlaggedOnTheirRowOnly) {
  const auto r = rows();
  const ValidateOptions o = small();
  std::vector<Prediction> p = predict(r, o).value;
  // Row 1 (refuted): claim it is certified with gamma = 0.9 (consistent bounds).
  p[1].cert.upper_bound = 0.9;
  p[1].cert.lower_bound = 0.85;
  p[1].cert.frozen_spectral_radius = 0.85;
  p[1].cert.verdict = Verdict::kCertified;
  // Row 2: an exponent 20 standard errors off.
  p[2].exponent += 20 * p[2].exponent_se + 1e-3;
  // Row 0: a witness at another angle than the one that reaches the lower bound.
  ASSERT_EQ(p[0].cert.witness.kind, Witness::Kind::kRotation);
  p[0].cert.witness.angle += 0.7;
  // Row 3: a verdict the bounds do not support.
  p[3].cert.verdict = p[3].cert.verdict == Verdict::kCertified ? Verdict::kRefuted : Verdict::kCertified;
  const Outcome a = run(r, o, &p);
  EXPECT_EQ(a.rep.disagreements(), 4);
  EXPECT_EQ(find(a.rep.rows[1], "random_bound").state, Check::State::kFail);
  EXPECT_EQ(find(a.rep.rows[1], "rotating_bound").state, Check::State::kFail);
  EXPECT_EQ(find(a.rep.rows[1], "witness_rate").state, Check::State::kFail);
  EXPECT_EQ(find(a.rep.rows[1], "full_bounded").state, Check::State::kFail);  // "certified" yet overflowing
  EXPECT_EQ(find(a.rep.rows[2], "random_exponent").state, Check::State::kFail);
  EXPECT_EQ(find(a.rep.rows[0], "witness_rate").state, Check::State::kFail);
  EXPECT_EQ(find(a.rep.rows[3], "prediction").state, Check::State::kFail);
  // Nothing else fails: the other checks of those rows still pass.
  EXPECT_EQ(failed(a.rep.rows[2]).size(), 1u) << ::testing::PrintToString(failed(a.rep.rows[2]));
  EXPECT_EQ(failed(a.rep.rows[0]).size(), 1u) << ::testing::PrintToString(failed(a.rep.rows[0]));
  // And the saved report lists every failed check, one entry each.
  const auto j = report_json(a.rep, o, current_provenance("test"));
  size_t fails = 0;
  for (const RowResult& rr : a.rep.rows) fails += failed(rr).size();
  EXPECT_EQ(j["disagreements"].size(), fails);
  EXPECT_EQ(j["summary"]["disagree"], 4);
}

TEST(Validate, TwoSeedsAgreeWithEachOther) {
  const auto r = rows();
  ValidateOptions o1 = small(), o2 = small();
  o2.seed = 77;
  const Outcome a = run(r, o1), b = run(r, o2);
  ASSERT_EQ(a.rep.rows.size(), b.rep.rows.size());
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_TRUE(a.rep.rows[i].agrees());
    EXPECT_TRUE(b.rep.rows[i].agrees());
    EXPECT_EQ(a.pred[i].cert.verdict, b.pred[i].cert.verdict);  // the certificate has no randomness
    const Measurement &ma = a.rep.rows[i].measured, &mb = b.rep.rows[i].measured;
    EXPECT_NE(ma.exponent, mb.exponent);  // other keys
    EXPECT_NEAR(ma.exponent, mb.exponent, o1.z * std::hypot(ma.exponent_se, mb.exponent_se)) << i;
    EXPECT_NEAR(ma.witness_rate, mb.witness_rate, 2 * (20.0 / o1.steps + o1.tol_round)) << i;  // deterministic keys
    EXPECT_EQ(ma.first_nonfinite >= 0, mb.first_nonfinite >= 0) << i;
  }
}

TEST(Validate, SavedPredictionsRoundTrip) {
  const auto r = rows();
  const ValidateOptions o = small();
  const Outcome a = run(r, o);
  const auto j = report_json(a.rep, o, current_provenance("test"));
  EXPECT_EQ(j["schema"], "mdnstab-validate/1");
  for (const char* k : {"tool_version", "git_commit", "date", "device", "command"})
    EXPECT_TRUE(j["provenance"].contains(k)) << k;
  auto sp = parse_predictions(nlohmann::json::parse(j.dump()), "memory");
  ASSERT_TRUE(sp.is_ok()) << sp.status.message;
  ASSERT_EQ(sp.value.rows.size(), r.size());
  for (size_t i = 0; i < r.size(); ++i) {
    ASSERT_EQ(sp.value.rows[i].gates.size(), r[i].gates.size());
    EXPECT_EQ(sp.value.rows[i].gates[0].log_mu, r[i].gates[0].log_mu);
    const Certificate &c0 = a.pred[i].cert, &c1 = sp.value.predictions[i].cert;
    EXPECT_EQ(c0.upper_bound, c1.upper_bound);
    EXPECT_EQ(c0.witness.angle, c1.witness.angle);
    EXPECT_EQ(c0.witness.keys.size(), c1.witness.keys.size());
    EXPECT_EQ(c0.W_factor, c1.W_factor);
    EXPECT_EQ(a.pred[i].exponent, sp.value.predictions[i].exponent);
  }
  auto backend = cpu_backend(2);
  const ValidationReport b = validate(sp.value.rows, sp.value.predictions, o, *backend).value;
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(a.rep.rows[i].measured.exponent, b.rows[i].measured.exponent);
    EXPECT_EQ(a.rep.rows[i].measured.first_nonfinite, b.rows[i].measured.first_nonfinite);
  }
}

TEST(Validate, BadInputIsRefused) {
  ValidateOptions o = small();
  o.dk = 300;
  EXPECT_NE(check(o).message.find("--dk 300"), std::string::npos);
  o = small();
  o.random_heads = 1;
  EXPECT_NE(check(o).message.find("--heads 1"), std::string::npos);
  o = small();
  o.z = NAN;
  EXPECT_FALSE(check(o).is_ok());
  auto backend = cpu_backend(1);
  const auto r = rows();
  EXPECT_FALSE(validate(r, std::vector<Prediction>(1), small(), *backend).is_ok());
  EXPECT_NE(parse_predictions(nlohmann::json::parse(R"({"rows": [{"gates": [{"alpha": 1.5, "beta": 0.1, "mu": 0.5, "eta": 1}],
      "prediction": {"upper_bound": 1, "lower_bound": 1}}]})"), "x").status.message.find("alpha"), std::string::npos);
  EXPECT_FALSE(parse_predictions(nlohmann::json::parse(R"({"rows": []})"), "x").is_ok());
}

}  // namespace
}  // namespace mdnstab
