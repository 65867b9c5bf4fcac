// GPU backend (src/cli/gpu_backend.hpp): many-config heads on every visible GPU,
// long runs of the recurrent kernel on the first.
#include "gpu_backend.hpp"

#include <fmt/format.h>

#include "mdnstab/many_config_ref.hpp"

#ifdef MDNSTAB_HAVE_CUDA
#include "mdn_kernels.hpp"
#endif

namespace mdnstab::cli {

#ifdef MDNSTAB_HAVE_CUDA

namespace {

namespace kn = mdnstab::kernels;

class GpuBackend : public ValidateBackend {
 public:
  GpuBackend(int count, int max_devices) : count_(max_devices > 0 ? std::min(count, max_devices) : count), max_(max_devices) {}
  std::string device() const override { return fmt::format("{} (x{})", kn::device_name(), count_); }
  int devices() const override { return count_; }
  bool gpu() const override { return true; }
  Status many_config(const kn::ManyConfigParams& p, double* seconds) override {
    kn::ManyConfigParams q = p;
    q.max_devices = max_;
    kn::ManyConfigInfo info;
    std::string why;
    const kn::Status s = kn::run_many_config(q, &info, &why);
    if (seconds) *seconds = info.seconds;
    return from_kernel_status(s, "GPU many-config run: " + why);
  }
  Status long_run(const kn::LongRunParams& p) override {
    std::string why;
    return from_kernel_status(kn::run_long_recurrent(p, &why), "GPU long run: " + why);
  }

 private:
  int count_, max_;
};

}  // namespace

std::unique_ptr<ValidateBackend> gpu_backend(std::string* why, int max_devices) {
  std::string reason;
  const int n = kn::device_count(&reason);
  if (n <= 0) {
    if (why) *why = "no GPU: " + (reason.empty() ? std::string("no CUDA device found") : reason);
    return nullptr;
  }
  return std::make_unique<GpuBackend>(n, max_devices);
}

#else

std::unique_ptr<ValidateBackend> gpu_backend(std::string* why, int) {
  if (why) *why = "no GPU: this build has no CUDA kernels (built without nvcc)";
  return nullptr;
}

#endif

}  // namespace mdnstab::cli
