// The sweep engine: grid points in chunks on all cores, each chunk in blocks
// of columns through the spectra (analyze_frozen_batch, or the portable
// analyze_frozen_batch_ref) and the metrics, CSV formatted per chunk in parallel
// and written in order through AtomicFile.
#include "mdnstab/sweep.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "mdnstab/atomic_file.hpp"
#include "mdnstab/chunk_ref.hpp"
#include "mdnstab/chunk_safety.hpp"
#include "mdnstab/number_text.hpp"
#include "mdnstab/spread_threads.hpp"

namespace mdnstab {

namespace {

constexpr long kChunk = 2048;           // points per task (one ordered write)
constexpr long kBlock = 1024;           // points per engine call: its columns stay in L2
constexpr long kStride = kBlock + 24;   // column stride: not a multiple of 4 KiB (cache sets)
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
  bool need_dynamics = false;
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
    r.need_dynamics = r.need_dynamics || (m->needs_spectrum && m->needs_dynamics);
  }
  return r;
}

double estimate_bytes(const Resolved& r) { return double(r.points) * double(r.columns.size()) * kBytesPerField; }

struct Partial {
  long complex = 0, negative = 0;
  double max_rho = -1;
  Gates argmax;
};

// Shortest round-trip text of v at p (fmt's "{}"); NaN ("none") is an empty field.
char* put_number(char* p, double v) { return std::isnan(v) ? p : write_shortest(p, v); }

// A field's text in a fixed slot, copied whole: the row keeps room for it.
struct FieldText {
  static constexpr int kRoom = 32;  // > kShortestMax and every label
  char text[kShortestRoom] = {};
  int len = -1;
  char* copy_to(char* p) const {
    std::memcpy(p, text, kRoom);  // fixed size: one or two vector moves
    return p + len;
  }
};

FieldText field_text(std::string_view s) {
  FieldText t;
  std::memcpy(t.text, s.data(), std::min(s.size(), size_t(FieldText::kRoom)));
  t.len = int(s.size());
  return t;
}

// One CSV column of metric values: the last value written and its text (neighbouring
// grid points often repeat a value, A_perp's metrics along beta, and equal bits give
// equal text), and an earlier field of the row that often holds the same value
// (frozen_rho for rho; l1_re for l2_re of a complex pair) or its negation (l1_im for
// l2_im of a complex pair), whose text then serves. (Formatting a run of rows column by
// column, for the conversions to overlap, measured slower: 0.30 against 0.25 s of
// CPU for 1001^2 rows of 28 columns.)
struct MetricField {
  std::vector<FieldText> labels;  // categorical: the text of each label index
  int same = -1, negated = -1;    // earlier field indices, or -1
  uint64_t bits = 0;
  FieldText cell;

  // v's text at p; `row` is the row's fields, those before this one already written.
  char* put(char* p, double v, const MetricField* row) {
    if (!labels.empty() && !std::isnan(v)) return labels[size_t(v)].copy_to(p);
    const uint64_t b = std::bit_cast<uint64_t>(v);
    if (b != bits || cell.len < 0) {
      bits = b;
      constexpr uint64_t kSign = uint64_t(1) << 63;
      if (same >= 0 && row[same].bits == b && row[same].cell.len >= 0) {
        cell = row[same].cell;
      } else if (negated >= 0 && (row[negated].bits ^ b) == kSign && row[negated].cell.len > 0 && v == v) {
        const FieldText& o = row[negated].cell;
        if (o.text[0] == '-') {
          std::memcpy(cell.text, o.text + 1, FieldText::kRoom - 1);
          cell.len = o.len - 1;
        } else {
          cell.text[0] = '-';
          std::memcpy(cell.text + 1, o.text, FieldText::kRoom - 1);
          cell.len = o.len + 1;
        }
      } else {
        cell.len = int(put_number(cell.text, v) - cell.text);
      }
    }
    return cell.copy_to(p);
  }
};

// The four gate slots' values (linear and log) per index of their axis, or the one
// fixed value; the gate columns' text likewise.
struct GateTable {
  int axis[4];
  std::vector<double> lin[4], lg[4];
  struct Column {
    int axis;
    std::vector<FieldText> text;
  };
  std::vector<Column> columns;  // alpha, beta, mu, eta, then log_alpha, log_mu if given
};

GateTable make_gate_table(const SweepSpec& spec, const Resolved& r, bool text) {
  GateTable t;
  for (int k = 0; k < 4; ++k) {
    t.axis[k] = r.axis[k];
    const long n = r.axis[k] >= 0 ? spec.axes[size_t(r.axis[k])].n : 1;
    for (long j = 0; j < n; ++j) {
      const double x = r.axis[k] >= 0 ? spec.axes[size_t(r.axis[k])].at(j) : r.fixed[k];
      const double y = r.log[k] ? std::exp(x) : std::log(x);
      t.lin[k].push_back(r.log[k] ? y : x);
      t.lg[k].push_back(r.log[k] ? x : y);
    }
  }
  if (!text) return t;
  auto add = [&](int k, bool lg) {
    GateTable::Column c{t.axis[k], {}};
    char tmp[kShortestRoom];
    for (double v : lg ? t.lg[k] : t.lin[k]) c.text.push_back(field_text(std::string_view(tmp, put_number(tmp, v))));
    t.columns.push_back(std::move(c));
  };
  for (int k = 0; k < 4; ++k) add(k, false);
  if (r.log[0]) add(0, true);
  if (r.log[2]) add(2, true);
  return t;
}

// Mixed-radix index of grid point p, the last axis varying fastest.
void point_index(const SweepSpec& spec, long p, long* idx) {
  for (size_t i = spec.axes.size(); i-- > 0;) {
    idx[i] = p % spec.axes[i].n;
    p /= spec.axes[i].n;
  }
}

void next_index(const SweepSpec& spec, long* idx, long step) {
  const size_t last = spec.axes.size() - 1;
  idx[last] += step;
  for (size_t i = last; i > 0 && idx[i] >= spec.axes[i].n; --i) {
    idx[i] = 0;
    ++idx[i - 1];
  }
}

// p[0, n) = v: a few values, then doubling copies (memcpy moves whole vectors).
void fill_value(double* p, long n, double v) {
  long done = std::min(n, 8L);
  std::fill_n(p, done, v);
  while (done < n) {
    const long k = std::min(done, n - done);
    std::memcpy(p + done, p, size_t(k) * sizeof(double));
    done += k;
  }
}

// The six gate columns of a block (alpha, beta, mu, eta, log_alpha, log_mu), each
// [kBlock], and which of them hold one value throughout (NaN: not known to).
struct GateColumns {
  double* col[6];
  double constant[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
};

// Gate columns [n] of grid points p0 .. p0 + n - 1, a run of the last axis at a
// time; a column that already holds the one value it needs is left alone.
void fill_gates(const SweepSpec& spec, const GateTable& t, long p0, long n, GateColumns& gc) {
  long idx[4] = {0, 0, 0, 0};
  point_index(spec, p0, idx);
  const int last = int(spec.axes.size()) - 1;
  const long n_last = spec.axes[size_t(last)].n;
  for (int k = 0; k < 4; ++k) {
    const int c_lin = k, c_log = k == 0 ? 4 : k == 2 ? 5 : -1;
    const int ax = t.axis[k];
    // One value for the whole block: fixed, or an outer axis that stays put.
    if (ax != last && (ax < 0 || idx[last] + n <= n_last)) {
      const size_t j = ax >= 0 ? size_t(idx[ax]) : 0;
      for (int c : {c_lin, c_log}) {
        if (c < 0) continue;
        const double v = c == c_lin ? t.lin[k][j] : t.lg[k][j];
        if (std::memcmp(&gc.constant[c], &v, sizeof v) != 0) {
          fill_value(gc.col[c], kBlock, v);
          gc.constant[c] = v;
        }
      }
      continue;
    }
    gc.constant[c_lin] = NAN;
    if (c_log >= 0) gc.constant[c_log] = NAN;
    long ix[4] = {idx[0], idx[1], idx[2], idx[3]};
    for (long i = 0; i < n;) {
      const long len = std::min(n - i, n_last - ix[last]);
      if (ax == last) {
        std::memcpy(gc.col[c_lin] + i, t.lin[k].data() + ix[last], size_t(len) * sizeof(double));
        if (c_log >= 0) std::memcpy(gc.col[c_log] + i, t.lg[k].data() + ix[last], size_t(len) * sizeof(double));
      } else {
        const size_t j = ax >= 0 ? size_t(ix[ax]) : 0;
        fill_value(gc.col[c_lin] + i, len, t.lin[k][j]);
        if (c_log >= 0) fill_value(gc.col[c_log] + i, len, t.lg[k][j]);
      }
      i += len;
      next_index(spec, ix, len);
    }
  }
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
  if (!(opt.max_output_bytes > 0))  // NaN too; inf is no limit
    return error(Code::kInvalidArgument,
                 fmt::format("--max-output-gb = {} must be > 0", opt.max_output_bytes / 1e9));
  if (spec.chunk.chunk < 1 || spec.chunk.chunk > kMaxChunk)
    return error(Code::kInvalidArgument, fmt::format("--chunk = {} must be in [1, {}]", spec.chunk.chunk, kMaxChunk));
  // The rule's sizes are those a measurement takes (chunk_safety.hpp).
  if (spec.chunk.steps < 1 || spec.chunk.steps > kMaxChunkSteps)
    return error(Code::kInvalidArgument,
                 fmt::format("--chunk-steps = {} must be in [1, {}]", spec.chunk.steps, kMaxChunkSteps));
  if (spec.chunk.dk < 1 || spec.chunk.dk > kMaxChunkDim)
    return error(Code::kInvalidArgument,
                 fmt::format("--chunk-dk = {} must be in [1, {}]", spec.chunk.dk, kMaxChunkDim));
  if (!(spec.chunk.tol > 0) || !std::isfinite(spec.chunk.tol))
    return error(Code::kInvalidArgument, fmt::format("--chunk-tolerance = {} must be > 0", spec.chunk.tol));
  if (opt.engine.engine == SweepEngine::kFast && opt.engine.simd && !simd_supported(*opt.engine.simd))
    return error(Code::kInvalidArgument, fmt::format("engine fast-{}: not supported by this CPU or build",
                                                     to_string(*opt.engine.simd)));
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
    // A file system that reports no blocks at all (/proc, /sys) says nothing about room:
    // creating the file there fails with its own message.
    if (!ec && space.capacity > 0 && bytes > 0.95 * double(space.available))
      return error(Code::kTooLarge, fmt::format("sweep output of about {:.3g} GB refused: only {:.3g} GB free",
                                                bytes / 1e9, double(space.available) / 1e9));
  }
  return Status::ok();
}

Result<EngineChoice> parse_sweep_engine(std::string_view s) {
  EngineChoice e;
  if (s == "auto") return e;
  if (s == "portable") {
    e.engine = SweepEngine::kPortable;
    return e;
  }
  e.engine = SweepEngine::kFast;
  if (s == "fast") return e;
  if (s == "fast-avx512") e.simd = SimdLevel::kAvx512;
  else if (s == "fast-avx2") e.simd = SimdLevel::kAvx2;
  else if (s == "fast-scalar") e.simd = SimdLevel::kNone;
  else
    return error(Code::kInvalidArgument,
                 fmt::format("unknown engine '{}' (expected auto, portable, fast, fast-avx512, fast-avx2 or fast-scalar)", s));
  return e;
}

namespace {
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
}  // namespace

Result<SweepSummary> run_sweep(const SweepSpec& spec, const SweepOptions& opt) {
  const auto t_start = std::chrono::steady_clock::now();
  const double cpu_start = process_cpu_seconds();
  if (Status s = check(spec, opt); !s.is_ok()) return s;
  const Resolved r = resolve(spec).value;
  // The engine: fast where the CPU has vector units (or when asked), else portable.
  const SimdLevel level = opt.engine.simd.value_or(best_simd_level());
  const bool fast = opt.engine.engine == SweepEngine::kFast ||
                    (opt.engine.engine == SweepEngine::kAuto && level != SimdLevel::kNone);

  AtomicFile file;
  const bool writing = !opt.out_path.empty();
  const GateTable gates = make_gate_table(spec, r, writing);
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

  const long n_chunks = (r.points + kChunk - 1) / kChunk;
  // No more threads than chunks: a worker with nothing to do still costs its start
  // (0.13 ms for pthread_create on an idle vCPU here; a one-chunk sweep takes 0.2 ms).
  const int threads = int(std::min<long>(opt.threads > 0 ? opt.threads : omp_get_num_procs(), n_chunks));
  std::vector<Partial> partial(static_cast<size_t>(n_chunks));
  size_t n_values = 0;
  std::vector<const MetricDef*> pointwise;  // metrics without a block form
  bool pointwise_spectrum = false;
  for (const MetricDef* m : r.metrics) {
    n_values += m->columns.size();
    if (!m->eval_block) {
      pointwise.push_back(m);
      pointwise_spectrum = pointwise_spectrum || m->needs_spectrum;
    }
  }
  // Room for a CSV row: every field at its slot's size (longer than any text; fields
  // are copied as whole slots), a comma after each.
  const size_t n_fields = gates.columns.size() + n_values;
  const size_t max_row = 2 + n_fields * (FieldText::kRoom + 1);
  // Each metric column's labels as slots, and the earlier fields whose text often serves.
  std::vector<MetricField> field_proto;
  {
    std::map<std::string, int> earlier;  // column name -> field index, the fields so far
    auto find = [&](const std::string& name) {
      const auto it = earlier.find(name);
      return it == earlier.end() ? -1 : it->second;
    };
    for (const MetricDef* m : r.metrics)
      for (const auto& name : m->columns) {
        MetricField f;
        for (const auto& l : m->labels) {
          if (l.size() > size_t(FieldText::kRoom)) throw std::logic_error("sweep: a label longer than a field slot");
          f.labels.push_back(field_text(l));
        }
        for (const std::string blk : {"_par", "_perp"}) {
          if (name == "rho" + blk) f.same = find("frozen_rho");
          if (name == "l2_re" + blk) f.same = find("l1_re" + blk);
          if (name == "l2_im" + blk) f.negated = find("l1_im" + blk);
        }
        earlier[name] = int(field_proto.size());
        field_proto.push_back(std::move(f));
      }
  }
  const SpectrumOptions sopt{r.need_peak, r.need_dynamics};

  // Workers take chunks in turn and format each into a slot of a ring; whoever
  // finishes the next chunk due writes it, and every later one already done. The
  // ring bounds memory, and waits sleep rather than spin: on a loaded machine a
  // spinning waiter takes the core from the worker it waits for.
  const long window = 4L * threads;
  std::vector<std::string> slot(writing ? size_t(window) : 0);
  std::vector<size_t> slot_used(size_t(window), 0);  // bytes of each slot
  std::vector<long> ready(size_t(window), -1);  // the chunk each slot holds, done
  std::mutex mu;
  std::condition_variable cv;
  long next_write = 0, done = 0;
  bool writer_busy = false;
  std::atomic<long> next_chunk{0};
  std::atomic<bool> failed{false};
  Status io_status;
  auto last_progress = t_start;

  auto report_progress = [&](long points) {  // under mu
    done += points;
    if (!opt.progress) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_progress > std::chrono::milliseconds(250) || done == r.points) {
      last_progress = now;
      fmt::print(stderr, "\rsweep: {:5.1f}% ({} of {} points)", 100.0 * double(done) / double(r.points), done,
                 r.points);
      if (done == r.points) fmt::print(stderr, "\n");
    }
  };

  auto work = [&] {
    std::vector<double> gate_store(6 * size_t(kStride));  // [6, kStride]
    GateColumns gcol;
    for (int k = 0; k < 6; ++k) gcol.col[k] = gate_store.data() + k * kStride;
    GateBatch gb{0, gcol.col[0], gcol.col[1], gcol.col[2], gcol.col[3], gcol.col[4], gcol.col[5], spec.p_scale};
    SpectrumBatch sb(kBlock);
    // [n_values, kStride]; left uninitialized: most metrics point at the spectrum's
    // columns and never touch their scratch column, whose pages then cost nothing.
    const auto value_store = std::make_unique_for_overwrite<double[]>(std::max<size_t>(n_values, 1) * size_t(kStride));
    std::vector<double*> scratch(n_values);
    for (size_t j = 0; j < n_values; ++j) scratch[j] = value_store.get() + j * size_t(kStride);
    std::vector<const double*> vcol(n_values);  // where each column's values are, per block
    std::vector<double> one(n_values);
    std::vector<MetricField> fields = field_proto;
    for (;;) {
      const long c = next_chunk.fetch_add(1);
      if (c >= n_chunks || failed) break;
      const size_t sl = size_t(c % window);
      if (writing) {  // wait until slot sl is free: chunk c - window is written
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return c < next_write + window || failed; });
        if (failed) break;
      }
      Partial& part = partial[size_t(c)];
      std::string* buf = writing ? &slot[sl] : nullptr;
      size_t used = 0;
      const long p0 = c * kChunk, p1 = std::min(r.points, p0 + kChunk);
      for (long b0 = p0; b0 < p1; b0 += kBlock) {
        const long n = std::min(kBlock, p1 - b0);
        gb.n = n;
        fill_gates(spec, gates, b0, n, gcol);
        if (fast)
          analyze_frozen_batch(gb, sopt, level, sb);
        else
          analyze_frozen_batch_ref(gb, sopt, sb);
        const SweepBlockContext bctx{gb, &sb, n};
        std::copy(scratch.begin(), scratch.end(), vcol.begin());
        size_t off = 0;
        for (const MetricDef* m : r.metrics) {
          if (m->eval_block) m->eval_block(bctx, vcol.data() + off);
          off += m->columns.size();
        }
        if (!pointwise.empty()) {
          for (long i = 0; i < n; ++i) {
            const Gates g = gb.at(i);
            FrozenSpectrum fs;
            if (pointwise_spectrum) fs = sb.at(i);
            const SweepPointContext ctx{g, &fs, &spec.chunk};
            size_t o = 0;
            for (const MetricDef* m : r.metrics) {
              if (!m->eval_block) {
                m->eval(ctx, one.data());
                for (size_t k = 0; k < m->columns.size(); ++k) scratch[o + k][i] = one[k];
              }
              o += m->columns.size();
            }
          }
        }
        part.complex += sb.n_complex;
        part.negative += sb.n_negative;
        if (sb.max_frozen_rho > part.max_rho) {  // the first point that reaches it
          const long i = std::find(sb.frozen_rho, sb.frozen_rho + n, sb.max_frozen_rho) - sb.frozen_rho;
          part.max_rho = sb.max_frozen_rho;
          part.argmax = gb.at(i);
        }
        if (!writing) continue;
        long idx[4] = {0, 0, 0, 0};
        point_index(spec, b0, idx);
        for (long i = 0; i < n; ++i) {
          if (buf->size() - used < max_row) buf->resize(std::max(2 * buf->size(), used + max_row));
          char* p = buf->data() + used;
          for (const auto& gc : gates.columns) {
            p = gc.text[gc.axis >= 0 ? size_t(idx[gc.axis]) : 0].copy_to(p);
            *p++ = ',';
          }
          for (size_t j = 0; j < n_values; ++j) {
            if (j) *p++ = ',';
            p = fields[j].put(p, vcol[j][i], fields.data());
          }
          *p++ = '\n';
          used = size_t(p - buf->data());
          next_index(spec, idx, 1);
        }
      }
      std::unique_lock lk(mu);
      report_progress(p1 - p0);
      if (!writing) continue;
      ready[sl] = c;
      slot_used[sl] = used;
      if (writer_busy) continue;  // the busy writer will take it
      writer_busy = true;
      while (!failed && ready[size_t(next_write % window)] == next_write) {
        const size_t w = size_t(next_write % window);
        lk.unlock();
        const Status st = file.write(std::string_view(slot[w].data(), slot_used[w]));
        lk.lock();
        if (!st.is_ok()) {
          io_status = st;
          failed = true;
        }
        ready[w] = -1;
        ++next_write;
        cv.notify_all();
      }
      writer_busy = false;
    }
  };
  {
    SpreadThreads pool(threads - 1, work);
    work();
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
  sum.engine = fast ? fmt::format("fast-{}", level == SimdLevel::kNone ? "scalar" : to_string(level)) : "portable";
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
  sum.seconds_cpu = process_cpu_seconds() - cpu_start;
  return sum;
}

}  // namespace mdnstab
