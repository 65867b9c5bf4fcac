// The JSON form of certificates and witnesses (certificate_json.hpp), one for
// `certify` and `constraint`. Tested through tests/cli/test_cli_certify.cpp
// and tests/cli/test_cli_constraint.cpp.
#include "certificate_json.hpp"

#include <cmath>

#include "app.hpp"

namespace mdnstab::cli {

nlohmann::json witness_json(const Witness& w, std::span<const Gates> set) {
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : w.keys) keys.push_back({k[0], k[1]});
  nlohmann::json j = {
      {"kind", to_string(w.kind)},
      {"family", w.family},
      {"growth", number_or_null(w.growth)},
      {"angle", w.angle},
      {"period", w.period},
      {"keys", keys},
      {"drift", w.drift},
      {"gate_index", w.gate_index},
      {"replay", "step t = 0, 1, ...: unit key in the plane of two orthonormal key directions e1, e2 "
                 "(rotation: k_t = cos(t*angle) e1 + sin(t*angle) e2, gate row gate_index[t % len]; "
                 "switching: k_t = R(floor(t / period) * drift) keys[t % period], gate row gate_index[t % period], R the "
                 "rotation of the plane); v = 0"}};
  if (!set.empty()) {
    nlohmann::json used = nlohmann::json::array();
    for (int g : w.gate_index)
      if (g >= 0 && size_t(g) < set.size()) used.push_back(gates_json(set[size_t(g)]));
    j["gates"] = used;
  }
  return j;
}

nlohmann::json certificate_json(const Certificate& c, std::span<const Gates> set) {
  const double gap = c.lower_bound > 0 ? c.upper_bound / c.lower_bound - 1 : NAN;
  const double opt_gap = c.gamma_dual > 0 ? c.common_upper_bound / c.gamma_dual - 1 : NAN;
  nlohmann::json by_word = nullptr;
  if (c.gate_memory > 0) {
    by_word = nlohmann::json::array();
    for (const auto& w : c.W_by_word) by_word.push_back({w[0], w[1], w[2]});
  }
  return {{"upper_bound", number_or_null(c.upper_bound)},
          {"common_upper_bound", number_or_null(c.common_upper_bound)},
          {"W", {c.W[0], c.W[1], c.W[2]}},
          {"W_factor", {c.W_factor[0], c.W_factor[1]}},
          {"gate_memory", c.gate_memory},
          {"gate_label", c.gate_memory > 0 ? nlohmann::json(c.gate_label) : nlohmann::json(nullptr)},
          {"W_by_word", by_word},
          {"lower_bound", number_or_null(c.lower_bound)},
          {"witness", witness_json(c.witness, set)},
          {"verdict", to_string(c.verdict)},
          {"certified_margin", 1 - c.upper_bound},
          {"refuted_margin", c.lower_bound - 1},
          {"gap", number_or_null(gap)},
          {"gamma_dual", number_or_null(c.gamma_dual)},
          {"optimality_gap", number_or_null(opt_gap)},
          {"frozen_spectral_radius", c.frozen_spectral_radius},
          {"active_gate", c.active_gate},
          {"set_size", c.gates}};
}

}  // namespace mdnstab::cli
