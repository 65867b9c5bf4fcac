// Temporary-then-rename output; a signal handler removes pending temporaries.
#include "mdnstab/atomic_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>

namespace mdnstab {

namespace {
constexpr int kSlots = 64;
// Paths of pending temporaries, readable from the signal handler.
std::array<std::array<char, 4096>, kSlots> g_pending{};
std::array<std::atomic<bool>, kSlots> g_used{};
std::once_flag g_handlers;

extern "C" void remove_pending_and_exit(int sig) {
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i].load()) unlink(g_pending[i].data());
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

int claim_slot(const std::string& tmp) {
  std::call_once(g_handlers, [] {
    std::signal(SIGINT, remove_pending_and_exit);
    std::signal(SIGTERM, remove_pending_and_exit);
  });
  if (tmp.size() >= 4096) return -1;
  static std::mutex claim;
  std::lock_guard lock(claim);
  for (int i = 0; i < kSlots; ++i) {
    if (!g_used[i].load()) {
      std::memcpy(g_pending[i].data(), tmp.c_str(), tmp.size() + 1);
      g_used[i].store(true);  // after the copy: the handler reads only whole paths
      return i;
    }
  }
  return -1;
}

void release_slot(int slot) {
  if (slot >= 0) g_used[slot].store(false);
}
}  // namespace

Status check_writable(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return error(Code::kIoError, "output path is empty");
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) return error(Code::kIoError, fmt::format("cannot write '{}': it is a directory", path));
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    return error(Code::kIoError, fmt::format("cannot write '{}': directory '{}' does not exist", path, dir.string()));
  if (access(dir.c_str(), W_OK) != 0)
    return error(Code::kIoError, fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  return Status::ok();
}

AtomicFile::~AtomicFile() { discard(); }

Status AtomicFile::open(const std::string& path) {
  if (Status s = check_writable(path); !s.is_ok()) return s;
  path_ = path;
  std::string templ = path + ".tmp.XXXXXX";
  const int fd = mkstemp(templ.data());
  if (fd < 0) return error(Code::kIoError, fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  tmp_ = templ;
  slot_ = claim_slot(tmp_);
  f_ = fdopen(fd, "wb");
  if (!f_) {
    close(fd);
    discard();
    return error(Code::kIoError, fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  }
  return Status::ok();
}

Status AtomicFile::write(std::string_view data) {
  if (!f_) return error(Code::kIoError, "write to a file that is not open");
  if (std::fwrite(data.data(), 1, data.size(), f_) != data.size()) {
    const std::string why = std::strerror(errno);
    discard();
    return error(Code::kIoError, fmt::format("writing '{}' failed: {}", path_, why));
  }
  return Status::ok();
}

Status AtomicFile::commit() {
  if (!f_) return error(Code::kIoError, "commit of a file that is not open");
  const bool ok = std::fflush(f_) == 0 && fsync(fileno(f_)) == 0;
  const int close_rc = std::fclose(f_);
  f_ = nullptr;
  if (!ok || close_rc != 0) {
    const std::string why = std::strerror(errno);
    discard();
    return error(Code::kIoError, fmt::format("writing '{}' failed: {}", path_, why));
  }
  // mkstemp creates mode 0600; give the result the usual permissions.
  const mode_t mask = umask(0);
  umask(mask);
  chmod(tmp_.c_str(), 0666 & ~mask);
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    discard();
    return error(Code::kIoError, fmt::format("cannot create '{}': {}", path_, why));
  }
  release_slot(slot_);
  slot_ = -1;
  tmp_.clear();
  return Status::ok();
}

void AtomicFile::discard() {
  if (f_) {
    std::fclose(f_);
    f_ = nullptr;
  }
  if (!tmp_.empty()) {
    unlink(tmp_.c_str());
    tmp_.clear();
  }
  release_slot(slot_);
  slot_ = -1;
}

}  // namespace mdnstab
