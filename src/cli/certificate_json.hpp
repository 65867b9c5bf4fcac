// One JSON form of a certificate and its witness (DESIGN.md sections 4 and 7),
// shared by `certify` and `constraint` (and any subcommand that prints one).
// Tested through tests/cli/test_cli_certify.cpp and test_cli_constraint.cpp.
#pragma once

#include <span>

#include <nlohmann/json.hpp>

#include "mdnstab/certify.hpp"

namespace mdnstab::cli {

// The witness with its replay recipe. `set` is the gate set the certificate
// was computed for: its rows named by gate_index are listed under "gates";
// an empty span (set not at hand) leaves "gates" out.
nlohmann::json witness_json(const Witness& w, std::span<const Gates> set);

// Keys: upper_bound, W, W_factor, lower_bound, witness, verdict,
// certified_margin, refuted_margin, gap, gamma_dual, optimality_gap,
// frozen_spectral_radius, active_gate, set_size (rows in the set; "gates"
// always means gate values elsewhere, e.g. constraint's per-sample objects).
nlohmann::json certificate_json(const Certificate& c, std::span<const Gates> set);

}  // namespace mdnstab::cli
