// Global options, error mapping and the shared gate options.
#include "app.hpp"

#include <cmath>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

namespace mdnstab::cli {

App::App() : CLI::App("mdnstab: stability of momentum linear-attention recurrences (MDN and relatives)", "mdnstab") {
  require_subcommand(1);
  set_version_flag("--version", std::string("mdnstab ") + MDNSTAB_VERSION + " (" + MDNSTAB_GIT_COMMIT + ")");
  set_config("--config", "", "read options from a TOML file (as --print-config writes it)");
  // A key no option takes is an error, not silently dropped: a typo would otherwise
  // run with the default. Subcommands inherit this when they are made.
  allow_config_extras(CLI::config_extras_mode::error);
  add_option("--format", format_, "output: a readable table or one JSON object")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  add_flag("--print-config", print_config_, "print the effective options as TOML and exit");
  fallthrough();
}

void App::add_command(CLI::App* sub, std::function<int()> run) {
  sub->fallthrough();
  commands_.emplace_back(sub, std::move(run));
}

int App::main(int argc, char** argv) {
  try {
    try {
      parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return exit(e);
    } catch (const CLI::CallForVersion& e) {
      return exit(e);
    } catch (const CLI::ConfigError& e) {
      // A key of the --config file that no option takes (CLI11 says "INI was not
      // able to parse KEY").
      const std::string_view what = e.what(), lead = "INI was not able to parse ";
      if (what.starts_with(lead))
        fmt::print(stderr, "mdnstab: error: --config {}: no option takes '{}' (--print-config lists the keys)\n",
                   get_config_ptr()->as<std::string>(), what.substr(lead.size()));
      else
        fmt::print(stderr, "mdnstab: error: --config: {}\n", what);
      return 2;
    } catch (const CLI::ParseError& e) {
      // CLI11 uses its own exit codes (105 for a range check): all bad input is 2.
      fmt::print(stderr, "mdnstab: error: {}\n", e.what());
      return 2;
    }
    if (print_config_) {
      std::cout << effective_config();
      return 0;
    }
    for (auto& [sub, run] : commands_)
      if (sub->parsed()) return run();
    fmt::print(stderr, "mdnstab: error: no subcommand given\n");
    return 2;
  } catch (const UsageError& e) {
    fmt::print(stderr, "mdnstab: error: {}\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "mdnstab: error: out of memory\n");
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "mdnstab: internal error: {}\n", e.what());
    return 3;
  }
}

std::string App::effective_config() const {
  // --format, then the chosen subcommand's options under its name, each given or
  // defaulted one as CLI11 writes it. Options with no value ("") are left out: they
  // would not read back (a number from ""), and leaving them out means the same.
  std::string out = fmt::format("format=\"{}\"\n", format_);
  for (const auto& [sub, run] : commands_) {
    if (!sub->parsed()) continue;
    out += fmt::format("[{}]\n", sub->get_name());
    std::istringstream lines(sub->config_to_str(true, false));
    for (std::string line; std::getline(lines, line);)
      if (!line.empty() && !line.ends_with("=\"\"")) out += line + "\n";
  }
  return out;
}

void ok_or_throw(const Status& s) {
  if (!s.is_ok()) throw UsageError(s.message);
}

void add_gate_options(CLI::App* sub, GateOptions& g, bool required) {
  auto* grp = sub->add_option_group("gates", required ? "the gate set (alpha or log-alpha, mu or log-mu)" : "");
  auto* a = grp->add_option("--alpha", g.alpha, "decay alpha in [0, 1]");
  auto* la = grp->add_option("--log-alpha", g.log_alpha, "log(alpha) <= 0");
  grp->add_option("--beta", g.beta, "step size beta in [0, 1]");
  auto* m = grp->add_option("--mu", g.mu, "momentum mu in [0, 1]");
  auto* lm = grp->add_option("--log-mu", g.log_mu, "log(mu) <= 0");
  grp->add_option("--eta", g.eta, "momentum input scale eta in [0, 2]");
  a->excludes(la);
  m->excludes(lm);
  sub->add_option("--p-scale", g.p_scale, "p_t = alpha k^ (alpha) or k^ (one)")
      ->check(CLI::IsMember({"alpha", "one"}))
      ->capture_default_str();
}

PScale resolve_p_scale(const std::string& s) { return value_or_throw(parse_p_scale(s)); }

Gates resolve_gates(const GateOptions& g) {
  const PScale p = resolve_p_scale(g.p_scale);
  if (!g.alpha && !g.log_alpha) throw UsageError("missing --alpha (or --log-alpha)");
  if (!g.beta) throw UsageError("missing --beta");
  if (!g.mu && !g.log_mu) throw UsageError("missing --mu (or --log-mu)");
  if (!g.eta) throw UsageError("missing --eta");
  if (g.log_alpha || g.log_mu) {
    // Check the linear value given, if any, under its own name first.
    if (g.alpha) ok_or_throw(check_gate("alpha", *g.alpha));
    if (g.mu) ok_or_throw(check_gate("mu", *g.mu));
    const double la = g.log_alpha ? *g.log_alpha : std::log(*g.alpha);
    const double lm = g.log_mu ? *g.log_mu : std::log(*g.mu);
    return value_or_throw(Gates::from_log(la, *g.beta, lm, *g.eta, p));
  }
  return value_or_throw(Gates::from_linear(*g.alpha, *g.beta, *g.mu, *g.eta, p));
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string num(double v) {
  if (std::isnan(v)) return "none";
  return fmt::format("{:.6g}", v);
}

nlohmann::json gates_json(const Gates& g) {
  return {{"alpha", g.alpha}, {"beta", g.beta}, {"mu", g.mu}, {"eta", g.eta},
          {"log_alpha", number_or_null(g.log_alpha)}, {"log_mu", number_or_null(g.log_mu)},
          {"p_scale", std::string(to_string(g.p_scale))}};
}

void print_json(const nlohmann::json& j) { std::cout << j.dump() << std::endl; }

}  // namespace mdnstab::cli
