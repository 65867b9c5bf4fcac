// Output files that appear whole or not at all: data goes to a temporary file
// beside the target, renamed over it on commit(); on error, destruction or
// SIGINT/SIGTERM the temporary is removed. Tested in tests/test_atomic_file.cpp.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "mdnstab/status.hpp"

namespace mdnstab {

class AtomicFile {
 public:
  AtomicFile() = default;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  Status open(const std::string& path);
  Status write(std::string_view data);
  Status commit();  // flush, close, rename onto the target
  void discard();   // remove the temporary, leave the target untouched
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  int slot_ = -1;
};

// Fails with a one-line message when `path` cannot be created (missing
// directory, no permission); touches nothing.
Status check_writable(const std::string& path);

}  // namespace mdnstab
