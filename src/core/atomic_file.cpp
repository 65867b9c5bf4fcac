// Temporary-then-rename output; a signal handler removes pending temporaries.
#include "mdnstab/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

void AtomicFile::FreeStage::operator()(char* p) const { std::free(p); }

Status AtomicFile::fail(int err) {
  discard();
  return error(Code::kIoError, fmt::format("writing '{}' failed: {}", path_, std::strerror(err)));
}

char* AtomicFile::new_stage() { return static_cast<char*>(std::aligned_alloc(4096, kStage)); }

int AtomicFile::set_direct(bool on) {
  const int flags = fcntl(fd_, F_GETFL);
  if (flags < 0 || fcntl(fd_, F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT) != 0) return errno;
  direct_ = on;
  return 0;
}

int AtomicFile::stop_writer() {
  if (!io_.joinable()) return 0;
  int err;
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return pending_ < 0; });  // a write under way ends first
    stop_ = true;
    err = io_err_;
  }
  cv_.notify_all();
  io_.join();
  return err;
}

Status AtomicFile::open(const std::string& path) {
  if (Status s = check_writable(path); !s.is_ok()) return s;
  discard();
  path_ = path;
  std::string templ = path + ".tmp.XXXXXX";
  const int fd = mkstemp(templ.data());
  if (fd < 0) return error(Code::kIoError, fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  tmp_ = templ;
  slot_ = claim_slot(tmp_);
  fd_ = fd;
  // 4 KiB alignment of the stages, their size and every offset suits any logical
  // block size up to 4 KiB. Pages are touched only as data arrives; the second
  // stage is made when the first is full.
  stage_[0].reset(new_stage());
  if (!stage_[0]) return fail(ENOMEM);
  cur_ = 0;
  used_ = 0;
  offset_ = 0;
  direct_bytes_ = 0;
  pending_ = -1;
  io_err_ = 0;
  stop_ = false;
  // Refused (EINVAL) where the file system has no direct I/O: plain writes then.
  // MDNSTAB_DIRECT_IO=0 asks for plain writes everywhere.
  const char* env = std::getenv("MDNSTAB_DIRECT_IO");
  direct_ = false;
  if (!(env && std::strcmp(env, "0") == 0)) set_direct(true);
  return Status::ok();
}

int AtomicFile::put(const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t k = pwrite(fd_, p, n, offset_);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && errno == EINVAL && direct_) {
      // Some file systems accept O_DIRECT but refuse the write itself.
      if (const int err = set_direct(false)) return err;
      continue;
    }
    if (k < 0) return errno;
    if (k == 0) return EIO;
    p += k;
    n -= size_t(k);
    offset_ += k;
    if (direct_) direct_bytes_ += k;
  }
  return 0;
}

void AtomicFile::writer() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return pending_ >= 0 || stop_; });
    if (pending_ < 0) return;
    const int s = pending_;
    lk.unlock();
    const int err = put(stage_[s].get(), kStage);
    lk.lock();
    if (err && !io_err_) io_err_ = err;
    pending_ = -1;
    cv_.notify_all();
  }
}

int AtomicFile::wait_idle() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return pending_ < 0; });
  return io_err_;
}

Status AtomicFile::write(std::string_view data) {
  if (fd_ < 0) return error(Code::kIoError, "write to a file that is not open");
  while (!data.empty()) {
    const std::size_t n = std::min(kStage - used_, data.size());
    std::memcpy(stage_[cur_].get() + used_, data.data(), n);
    used_ += n;
    data.remove_prefix(n);
    if (used_ < kStage) continue;
    // Hand the full stage over; the other one is free once its write is done.
    if (const int err = wait_idle()) return fail(err);
    if (!stage_[1]) {
      stage_[1].reset(new_stage());
      if (!stage_[1]) return fail(ENOMEM);
      io_ = std::thread([this] { writer(); });
    }
    {
      std::lock_guard lk(mu_);
      pending_ = cur_;
    }
    cv_.notify_all();
    cur_ ^= 1;
    used_ = 0;
  }
  return Status::ok();
}

Status AtomicFile::commit() {
  if (fd_ < 0) return error(Code::kIoError, "commit of a file that is not open");
  int err = stop_writer();
  if (err) return fail(err);
  if (used_ > 0) {
    // The tail is not a whole number of blocks: a plain write.
    if (direct_ && (err = set_direct(false))) return fail(err);
    if ((err = put(stage_[cur_].get(), used_))) return fail(err);
    used_ = 0;
  }
  stage_[0].reset();
  stage_[1].reset();
  if (fsync(fd_) != 0) return fail(errno);
  const int rc = close(fd_);
  fd_ = -1;
  if (rc != 0) return fail(errno);
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
  stop_writer();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  stage_[0].reset();
  stage_[1].reset();
  used_ = 0;
  if (!tmp_.empty()) {
    unlink(tmp_.c_str());
    tmp_.clear();
  }
  release_slot(slot_);
  slot_ = -1;
}

}  // namespace mdnstab
