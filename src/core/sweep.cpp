// The sweep engine: grid points in chunks on all cores (OpenMP), CSV
// formatted per chunk in parallel and written in order through AtomicFile.
#include "mdnstab/sweep.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "mdnstab/atomic_file.hpp"
#include "mdnstab/chunk_ref.hpp"

namespace mdnstab {

namespace {

constexpr long kChunk = 8192;           // points per task
constexpr double kMaxPoints = 1e10;     // beyond this a sweep would run for days
constexpr double kBytesPerField = 22;   // shortest round-trip doubles average ~18-22 chars

bool known_gate(std::string_view n) {
  return std::find(std::begin(kGateNames), std::end(kGateNames), n) != std::end(kGateNames);
}

Result<double> parse_number(std::string_view s, std::string_view what) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    return error(Code::kInvalidArgument, fmt::format("{}: '{}' is not a number", what, s));
  return v;
}

// Which of the four gates a name sets.
std::string_view slot_of(std::string_view name) {
  if (name == "log_alpha") return "alpha";
  if (name == "log_mu") return "mu";
  return name;
}

struct Resolved {
  // For each gate slot (alpha, beta, mu, eta): the source axis (or -1) and whether
  // it is given in log space.
  int axis[4] = {-1, -1, -1, -1};
  bool log[4] = {false, false, false, false};
  double fixed[4] = {0, 0, 0, 0};
  std::vector<const MetricDef*> metrics;
  std::vector<std::string> columns;
  long points = 0;
  bool need_peak = false;
};

int slot_index(std::string_view slot) {
  if (slot == "alpha") return 0;
  if (slot == "beta") return 1;
  if (slot == "mu") return 2;
  return 3;
}

Result<Resolved> resolve(const SweepSpec& spec) {
  Resolved r;
  if (spec.axes.empty() || spec.axes.size() > 4)
    return error(Code::kInvalidArgument, fmt::format("sweep needs 1 to 4 axes, got {}", spec.axes.size()));
  std::map<std::string, std::string> seen;  // slot -> the name that set it
  auto claim = [&](const std::string& name) -> Status {
    if (!known_gate(name)) return error(Code::kInvalidArgument, fmt::format("unknown gate '{}'", name));
    const std::string slot(slot_of(name));
    if (auto it = seen.find(slot); it != seen.end())
      return error(Code::kInvalidArgument, it->second == name
                                               ? fmt::format("'{}' is given twice", name)
                                               : fmt::format("'{}' is given twice (as {} and {})", slot, it->second, name));
    seen[slot] = name;
    return Status::ok();
  };
  double points = 1;
  for (size_t i = 0; i < spec.axes.size(); ++i) {
    const Axis& a = spec.axes[i];
    if (Status s = claim(a.name); !s.is_ok()) return s;
    if (a.n < 1) return error(Code::kInvalidArgument, fmt::format("axis {}: N = {} must be >= 1", a.name, a.n));
    if (a.n == 1 && a.start != a.stop)
      return error(Code::kInvalidArgument, fmt::format("axis {}: N = 1 needs START = STOP", a.name));
    for (double v : {a.start, a.stop})
      if (Status s = check_gate(a.name, v); !s.is_ok()) return error(s.code, "axis " + s.message);
    const int k = slot_index(slot_of(a.name));
    r.axis[k] = int(i);
    r.log[k] = a.name.starts_with("log_");
    points *= double(a.n);
  }
  for (const FixedGate& f : spec.fixed) {
    if (Status s = claim(f.name); !s.is_ok()) return s;
    if (Status s = check_gate(f.name, f.value); !s.is_ok()) return s;
    const int k = slot_index(slot_of(f.name));
    r.fixed[k] = f.value;
    r.log[k] = f.name.starts_with("log_");
  }
  for (const char* slot : {"alpha", "beta", "mu", "eta"})
    if (!seen.count(slot))
      return error(Code::kInvalidArgument,
                   fmt::format("gate '{}' is neither an axis nor fixed (add --fix {}=VALUE)", slot, slot));
  if (points > kMaxPoints)
    return error(Code::kTooLarge, fmt::format("sweep of {:.3g} points refused: more than {:.0g}", points, kMaxPoints));
  r.points = long(points);

  const auto& all = sweep_metrics();
  std::vector<std::string> names = spec.metrics;
  if (names.empty())
    for (const MetricDef& m : all)
      if (m.default_on) names.push_back(m.name);
  for (size_t i = 0; i < names.size(); ++i) {
    if (std::find(names.begin(), names.begin() + long(i), names[i]) != names.begin() + long(i))
      return error(Code::kInvalidArgument, fmt::format("metric '{}' is given twice", names[i]));
    auto it = std::find_if(all.begin(), all.end(), [&](const MetricDef& m) { return m.name == names[i]; });
    if (it == all.end()) return error(Code::kInvalidArgument, fmt::format("unknown metric '{}'", names[i]));
    r.metrics.push_back(&*it);
  }
  // Columns: the four gates, the log-space ones given, then the metrics in table order.
  std::stable_sort(r.metrics.begin(), r.metrics.end(), [&](const MetricDef* a, const MetricDef* b) { return a < b; });
  r.columns = {"alpha", "beta", "mu", "eta"};
  if (r.log[0]) r.columns.push_back("log_alpha");
  if (r.log[2]) r.columns.push_back("log_mu");
  for (const MetricDef* m : r.metrics) {
    r.columns.insert(r.columns.end(), m->columns.begin(), m->columns.end());
    r.need_peak = r.need_peak || m->needs_transient_peak;
  }
  return r;
}

double estimate_bytes(const Resolved& r) { return double(r.points) * double(r.columns.size()) * kBytesPerField; }

struct Partial {
  long complex = 0, negative = 0;
  double max_rho = -1;
  Gates argmax;
};

void append_number(std::string& buf, double v) {
  if (std::isnan(v)) return;  // "none": empty field
  fmt::format_to(std::back_inserter(buf), "{}", v);
}

}  // namespace

Result<Axis> parse_axis(std::string_view spec) {
  const auto eq = spec.find('=');
  if (eq == std::string_view::npos)
    return error(Code::kInvalidArgument, fmt::format("axis '{}' is not NAME=START:STOP:N", spec));
  Axis a;
  a.name = std::string(spec.substr(0, eq));
  if (!known_gate(a.name))
    return error(Code::kInvalidArgument,
                 fmt::format("unknown axis '{}' (expected alpha, beta, mu, eta, log_alpha or log_mu)", a.name));
  std::string_view rest = spec.substr(eq + 1);
  std::vector<std::string_view> parts;
  for (size_t p = 0;;) {
    const size_t c = rest.find(':', p);
    parts.push_back(rest.substr(p, c == std::string_view::npos ? std::string_view::npos : c - p));
    if (c == std::string_view::npos) break;
    p = c + 1;
  }
  if (parts.size() != 3)
    return error(Code::kInvalidArgument, fmt::format("axis '{}' is not NAME=START:STOP:N", spec));
  const std::string what = fmt::format("axis {}", a.name);
  auto start = parse_number(parts[0], what);
  if (!start.is_ok()) return start.status;
  auto stop = parse_number(parts[1], what);
  if (!stop.is_ok()) return stop.status;
  long n = 0;
  auto [p, ec] = std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), n);
  if (parts[2].empty() || ec != std::errc() || p != parts[2].data() + parts[2].size())
    return error(Code::kInvalidArgument, fmt::format("axis {}: N = '{}' is not an integer", a.name, parts[2]));
  if (n < 1) return error(Code::kInvalidArgument, fmt::format("axis {}: N = {} must be >= 1", a.name, n));
  a.start = start.value;
  a.stop = stop.value;
  a.n = n;
  for (double v : {a.start, a.stop})
    if (Status s = check_gate(a.name, v); !s.is_ok()) return error(s.code, "axis " + s.message);
  if (a.n == 1 && a.start != a.stop)
    return error(Code::kInvalidArgument, fmt::format("axis {}: N = 1 needs START = STOP", a.name));
  return a;
}

Result<FixedGate> parse_fixed(std::string_view spec) {
  const auto eq = spec.find('=');
  if (eq == std::string_view::npos)
    return error(Code::kInvalidArgument, fmt::format("fixed value '{}' is not NAME=VALUE", spec));
  FixedGate f;
  f.name = std::string(spec.substr(0, eq));
  if (!known_gate(f.name)) return error(Code::kInvalidArgument, fmt::format("unknown gate '{}' in --fix", f.name));
  auto v = parse_number(spec.substr(eq + 1), f.name);
  if (!v.is_ok()) return v.status;
  f.value = v.value;
  if (Status s = check_gate(f.name, f.value); !s.is_ok()) return s;
  return f;
}

Status check(const SweepSpec& spec, const SweepOptions& opt) {
  auto r = resolve(spec);
  if (!r.is_ok()) return r.status;
  if (opt.threads < 0) return error(Code::kInvalidArgument, fmt::format("--threads = {} must be >= 0", opt.threads));
  if (spec.chunk.chunk < 1 || spec.chunk.chunk > kMaxChunk)
    return error(Code::kInvalidArgument, fmt::format("--chunk = {} must be in [1, {}]", spec.chunk.chunk, kMaxChunk));
  if (!(spec.chunk.tol > 0) || !std::isfinite(spec.chunk.tol))
    return error(Code::kInvalidArgument, fmt::format("--chunk-tolerance = {} must be > 0", spec.chunk.tol));
  if (!opt.out_path.empty()) {
    if (Status s = check_writable(opt.out_path); !s.is_ok()) return s;
    const double bytes = estimate_bytes(r.value);
    if (bytes > opt.max_output_bytes)
      return error(Code::kTooLarge, fmt::format("sweep output of about {:.3g} GB refused: over the {:.3g} GB limit",
                                                bytes / 1e9, opt.max_output_bytes / 1e9));
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path p(opt.out_path);
    const auto space = fs::space(p.has_parent_path() ? p.parent_path() : fs::path("."), ec);
    if (!ec && bytes > 0.95 * double(space.available))
      return error(Code::kTooLarge, fmt::format("sweep output of about {:.3g} GB refused: only {:.3g} GB free",
                                                bytes / 1e9, double(space.available) / 1e9));
  }
  return Status::ok();
}

Result<SweepSummary> run_sweep(const SweepSpec& spec, const SweepOptions& opt) {
  const auto t_start = std::chrono::steady_clock::now();
  if (Status s = check(spec, opt); !s.is_ok()) return s;
  const Resolved r = resolve(spec).value;

  // Per-axis values and their exp/log, so that assembling a point's gates is loads.
  std::vector<std::vector<double>> val(spec.axes.size()), other(spec.axes.size());
  for (size_t i = 0; i < spec.axes.size(); ++i) {
    const Axis& a = spec.axes[i];
    const bool is_log = a.name.starts_with("log_");
    for (long j = 0; j < a.n; ++j) {
      const double x = a.at(j);
      val[i].push_back(x);
      other[i].push_back(is_log ? std::exp(x) : std::log(x));
    }
  }
  double fixed_other[4];
  for (int k = 0; k < 4; ++k) fixed_other[k] = r.log[k] ? std::exp(r.fixed[k]) : std::log(r.fixed[k]);

  AtomicFile file;
  const bool writing = !opt.out_path.empty();
  if (writing) {
    if (Status s = file.open(opt.out_path); !s.is_ok()) return s;
    std::string header;
    for (size_t i = 0; i < r.columns.size(); ++i) {
      if (i) header += ',';
      header += r.columns[i];
    }
    header += '\n';
    if (Status s = file.write(header); !s.is_ok()) return s;
  }

  const int threads = opt.threads > 0 ? opt.threads : omp_get_num_procs();
  const long n_chunks = (r.points + kChunk - 1) / kChunk;
  std::vector<Partial> partial(static_cast<size_t>(n_chunks));
  size_t n_values = 0;
  for (const MetricDef* m : r.metrics) n_values += m->columns.size();
  const SpectrumOptions sopt{r.need_peak};
  const size_t naxes = spec.axes.size();
  Status io_status;
  long done = 0;
  auto last_progress = t_start;

#pragma omp parallel num_threads(threads)
  {
    std::vector<double> values(n_values);
    std::string buf;
#pragma omp for schedule(dynamic, 1) ordered
    for (long c = 0; c < n_chunks; ++c) {
      Partial& part = partial[size_t(c)];
      buf.clear();
      const long p0 = c * kChunk, p1 = std::min(r.points, p0 + kChunk);
      long idx[4] = {0, 0, 0, 0};
      {
        long rem = p0;  // last axis varies fastest
        for (size_t i = naxes; i-- > 0;) {
          idx[i] = rem % spec.axes[i].n;
          rem /= spec.axes[i].n;
        }
      }
      for (long p = p0; p < p1; ++p) {
        double lin[4], lg[4];
        for (int k = 0; k < 4; ++k) {
          const int ax = r.axis[k];
          const double x = ax >= 0 ? val[size_t(ax)][size_t(idx[ax])] : r.fixed[k];
          const double y = ax >= 0 ? other[size_t(ax)][size_t(idx[ax])] : fixed_other[k];
          lin[k] = r.log[k] ? y : x;
          lg[k] = r.log[k] ? x : y;
        }
        Gates g;
        g.alpha = lin[0];
        g.beta = lin[1];
        g.mu = lin[2];
        g.eta = lin[3];
        g.log_alpha = lg[0];
        g.log_mu = lg[2];
        g.p_scale = spec.p_scale;
        const FrozenSpectrum fs = analyze_frozen(g, sopt);
        if (fs.parallel.regime == Regime::kComplex) ++part.complex;
        if (fs.parallel.negative_eigenvalue || fs.perpendicular.negative_eigenvalue) ++part.negative;
        if (fs.frozen_spectral_radius > part.max_rho) {
          part.max_rho = fs.frozen_spectral_radius;
          part.argmax = g;
        }
        const SweepPointContext ctx{g, &fs, &spec.chunk};
        size_t off = 0;
        for (const MetricDef* m : r.metrics) {
          m->eval(ctx, values.data() + off);
          off += m->columns.size();
        }
        if (writing) {
          for (double x : {g.alpha, g.beta, g.mu, g.eta}) {
            append_number(buf, x);
            buf += ',';
          }
          if (r.log[0]) {
            append_number(buf, g.log_alpha);
            buf += ',';
          }
          if (r.log[2]) {
            append_number(buf, g.log_mu);
            buf += ',';
          }
          size_t j = 0;
          for (const MetricDef* m : r.metrics)
            for (size_t col = 0; col < m->columns.size(); ++col, ++j) {
              if (j) buf += ',';
              if (!m->labels.empty() && !std::isnan(values[j]))
                buf += m->labels[size_t(values[j])];
              else
                append_number(buf, values[j]);
            }
          buf += '\n';
        }
        for (size_t i = naxes; i-- > 0;) {  // advance the mixed-radix index
          if (++idx[i] < spec.axes[i].n) break;
          idx[i] = 0;
        }
      }
#pragma omp ordered
      {
        if (writing && io_status.is_ok()) io_status = file.write(buf);
        done += p1 - p0;
        if (opt.progress) {
          const auto now = std::chrono::steady_clock::now();
          if (now - last_progress > std::chrono::milliseconds(250) || done == r.points) {
            last_progress = now;
            fmt::print(stderr, "\rsweep: {:5.1f}% ({} of {} points)", 100.0 * double(done) / double(r.points), done,
                       r.points);
            if (done == r.points) fmt::print(stderr, "\n");
          }
        }
      }
    }
  }
  const auto t_compute = std::chrono::steady_clock::now();
  if (!io_status.is_ok()) return io_status;
  if (writing)
    if (Status s = file.commit(); !s.is_ok()) return s;

  SweepSummary sum;
  sum.points = r.points;
  sum.columns = r.columns;
  sum.threads = threads;
  sum.estimated_bytes = estimate_bytes(r);
  long complex = 0, negative = 0;
  for (const Partial& p : partial) {
    complex += p.complex;
    negative += p.negative;
    if (p.max_rho > sum.max_frozen_rho || &p == &partial.front()) {
      sum.max_frozen_rho = p.max_rho;
      sum.argmax = p.argmax;
    }
  }
  sum.fraction_complex = double(complex) / double(r.points);
  sum.fraction_negative = double(negative) / double(r.points);
  const auto t_end = std::chrono::steady_clock::now();
  sum.seconds_compute = std::chrono::duration<double>(t_compute - t_start).count();
  sum.seconds_total = std::chrono::duration<double>(t_end - t_start).count();
  return sum;
}

}  // namespace mdnstab
