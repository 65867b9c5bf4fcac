// The mdnstab command line: one App owning the global options (--format,
// --config, --print-config, --version) and the subcommands, each a thin layer
// over the library (src/cli/cmd_<name>.cpp). Errors: one line, exit code 2.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mdnstab/gates.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab::cli {

// Bad input: reported as one line on stderr with exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class Format { kTable, kJson };

class App : public CLI::App {
 public:
  App();
  // Registers a subcommand and what runs when it is chosen (returns the exit code).
  void add_command(CLI::App* sub, std::function<int()> run);
  Format format() const { return format_ == "json" ? Format::kJson : Format::kTable; }
  // Parses, dispatches, maps every error to its exit code.
  int main(int argc, char** argv);
  // --print-config's TOML: --format and the chosen subcommand's effective options,
  // which --config reads back.
  std::string effective_config() const;

 private:
  std::string format_ = "table";
  bool print_config_ = false;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands_;
};

// Status -> UsageError (or pass).
void ok_or_throw(const Status& s);
template <class T>
T value_or_throw(Result<T> r) {
  ok_or_throw(r.status);
  return std::move(r.value);
}

// --alpha --beta --mu --eta (or --log-alpha --log-mu) and --p-scale.
struct GateOptions {
  std::optional<double> alpha, beta, mu, eta, log_alpha, log_mu;
  std::string p_scale = "alpha";
};
void add_gate_options(CLI::App* sub, GateOptions& g, bool required = true);
Gates resolve_gates(const GateOptions& g);
PScale resolve_p_scale(const std::string& s);
nlohmann::json gates_json(const Gates& g);

// A finite double, or null (JSON has no inf or NaN).
nlohmann::json number_or_null(double v);
// Shortest round-trip text of a double ("inf", "none" for NaN).
std::string num(double v);

// Prints a JSON object on stdout, one line.
void print_json(const nlohmann::json& j);

// Subcommand registration, one per cmd_<name>.cpp.
void setup_point(App& app);
void setup_sweep(App& app);
void setup_certify(App& app);
void setup_lyapunov(App& app);
void setup_constraint(App& app);
void setup_chunk_safety(App& app);
void setup_ode(App& app);
void setup_simulate(App& app);
void setup_validate(App& app);
void setup_report(App& app);

}  // namespace mdnstab::cli
