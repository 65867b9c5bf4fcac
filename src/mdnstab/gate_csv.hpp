// Gate rows from a CSV file: a header naming the columns alpha, beta, mu, eta
// (or log_alpha, log_mu in place of alpha, mu; other columns are ignored), one
// gate set per data row. Used by `certify --csv` and `constraint --param FILE.csv`.
// Tested in tests/test_gate_csv.cpp.
#pragma once

#include <string>
#include <vector>

#include "mdnstab/gates.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

// Blank lines and lines starting with '#' are skipped. Where both alpha and
// log_alpha (or mu and log_mu) are present, the log column is used (exact near 1).
// Errors name the data row (1-based, as in "row 3", header not counted), the
// file line, and the column; a file with no data row is an error.
Result<std::vector<Gates>> read_gate_csv(const std::string& path, PScale p);

// The same from text already in memory (`source` names it in messages).
Result<std::vector<Gates>> parse_gate_csv(const std::string& text, PScale p, const std::string& source = "<csv>");

}  // namespace mdnstab
