// Output files that appear whole or not at all: data goes to a temporary file
// beside the target, renamed over it on commit(); on error, destruction or
// SIGINT/SIGTERM the temporary is removed. Large outputs reach the disk by direct
// I/O where the file system takes it (see write()). Tested in tests/test_atomic_file.cpp.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "mdnstab/status.hpp"

namespace mdnstab {

class AtomicFile {
 public:
  AtomicFile() = default;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  Status open(const std::string& path);
  // Data is gathered in an aligned stage of kStage bytes. Each full stage is written
  // by a background thread while the next one fills (the caller does not wait on
  // the disk), with O_DIRECT where the file system takes it: through the page cache
  // a write costs ~1 ns of CPU per byte here, a direct one ~0.1. A file smaller than
  // a stage is written once, at commit(), as before. The environment variable
  // MDNSTAB_DIRECT_IO=0 turns direct I/O off (plain writes, still in the background).
  Status write(std::string_view data);
  Status commit();  // the rest, fsync, close, rename onto the target
  void discard();   // remove the temporary, leave the target untouched
  const std::string& path() const { return path_; }
  // Bytes that went to the disk by direct I/O (read after commit() or discard()).
  long long direct_bytes() const { return direct_bytes_; }

  static constexpr std::size_t kStage = std::size_t(4) << 20;

 private:
  struct FreeStage {
    void operator()(char* p) const;
  };
  int put(const char* p, std::size_t n);  // n bytes at the end of the file; errno or 0
  Status fail(int err);                   // discard, and the error
  int wait_idle();                        // until no stage is being written; its errno or 0
  int stop_writer();                      // the thread's last write ends, it stops; its errno or 0
  int set_direct(bool on);                // O_DIRECT on or off; errno or 0
  static char* new_stage();               // kStage bytes, 4 KiB aligned (nullptr: no memory)
  void writer();                          // the background thread

  std::string path_, tmp_;
  int fd_ = -1;
  bool direct_ = false;
  std::unique_ptr<char, FreeStage> stage_[2];
  int cur_ = 0;            // the stage being filled
  std::size_t used_ = 0;   // its bytes
  off_t offset_ = 0;       // bytes in the file (the writer's, while it writes)
  long long direct_bytes_ = 0;
  int slot_ = -1;
  // The hand-over to the writer thread: the stage it writes (-1: none) and the
  // errno of its last write.
  std::thread io_;
  std::mutex mu_;
  std::condition_variable cv_;
  int pending_ = -1;
  int io_err_ = 0;
  bool stop_ = false;
};

// Fails with a one-line message when `path` cannot be created (missing
// directory, no permission); touches nothing.
Status check_writable(const std::string& path);

}  // namespace mdnstab
