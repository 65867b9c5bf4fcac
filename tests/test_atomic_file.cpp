// AtomicFile: nothing visible before commit, nothing left after discard or
// destruction, and large outputs (several stages, written by the background
// thread, by direct I/O where the file system takes it) byte for byte as given,
// on the temporary directory and on tmpfs; and a direct write refused with EINVAL
// (as some file systems do after taking O_DIRECT at open) carried on by plain writes.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>

#include "mdnstab/atomic_file.hpp"

namespace {
std::atomic<int> g_refuse_direct{0};  // direct writes still to refuse with EINVAL
std::atomic<int> g_direct_writes{0};  // direct writes asked for
}  // namespace

// This binary's pwrite takes the place of libc's (AtomicFile is linked in statically): a
// write on an O_DIRECT descriptor is refused while g_refuse_direct is armed; every other
// write passes through.
extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  using Fn = ssize_t (*)(int, const void*, size_t, off_t);
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "pwrite"));
  const int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_DIRECT)) {
    ++g_direct_writes;
    for (int k = g_refuse_direct.load(); k > 0;)
      if (g_refuse_direct.compare_exchange_weak(k, k - 1)) {
        errno = EINVAL;
        return -1;
      }
  }
  return real(fd, buf, n, offset);
}

namespace mdnstab {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

long entries(const fs::path& dir) { return long(std::distance(fs::directory_iterator(dir), {})); }

TEST(AtomicFile, AppearsWholeOrNotAtAll) {
  const auto dir = fs::temp_directory_path() / "mdnstab_test_atomic";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "f.txt").string();
  {
    AtomicFile f;
    ASSERT_TRUE(f.open(path).is_ok());
    ASSERT_TRUE(f.write("partial").is_ok());
    EXPECT_FALSE(fs::exists(path));  // not visible before commit
  }  // destroyed without commit: nothing left
  EXPECT_EQ(entries(dir), 0);
  AtomicFile g;
  ASSERT_TRUE(g.open(path).is_ok());
  ASSERT_TRUE(g.write("whole\n").is_ok());
  ASSERT_TRUE(g.commit().is_ok());
  EXPECT_EQ(read_all(path), "whole\n");
  EXPECT_EQ(g.direct_bytes(), 0);  // smaller than a stage: one plain write
  EXPECT_EQ(entries(dir), 1);
  EXPECT_FALSE(check_writable((dir / "missing" / "x").string()).is_ok());
  EXPECT_FALSE(check_writable(dir.string()).is_ok());  // a directory
  fs::remove_all(dir);
}

// Random text in pieces of random size (some longer than a stage), to a file of
// about 2.6 stages, so that full stages, the hand-over and the tail all occur.
void write_large(const fs::path& dir, bool direct_allowed = true) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "big.csv").string();
  std::mt19937_64 rng(11);
  std::string want;
  const size_t total = AtomicFile::kStage * 2 + AtomicFile::kStage * 6 / 10 + 123;
  while (want.size() < total) want += std::to_string(rng()) + (rng() % 7 == 0 ? "\n" : ",");
  want.resize(total);
  AtomicFile f;
  ASSERT_TRUE(f.open(path).is_ok());
  size_t at = 0;
  std::uniform_int_distribution<size_t> piece(0, AtomicFile::kStage + AtomicFile::kStage / 3);
  while (at < want.size()) {
    const size_t n = std::min(piece(rng) % 5 == 0 ? piece(rng) : piece(rng) % 70000, want.size() - at);
    ASSERT_TRUE(f.write(std::string_view(want).substr(at, n)).is_ok());
    at += n;
  }
  EXPECT_FALSE(fs::exists(path));
  ASSERT_TRUE(f.commit().is_ok());
  const std::string got = read_all(path);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
  // Whole stages only ever go by direct I/O; the tail never does.
  EXPECT_EQ(f.direct_bytes() % AtomicFile::kStage, 0);
  EXPECT_LE(f.direct_bytes(), (long long)(2 * AtomicFile::kStage));
  if (!direct_allowed) {
    EXPECT_EQ(f.direct_bytes(), 0);
  }
  std::cout << "  " << dir.string() << ": " << f.direct_bytes() << " of " << got.size() << " bytes by direct I/O\n";
  EXPECT_EQ(entries(dir), 1);

  // Discarded after stages went to the background writer: nothing left.
  {
    AtomicFile g;
    ASSERT_TRUE(g.open((dir / "gone.csv").string()).is_ok());
    ASSERT_TRUE(g.write(want).is_ok());
  }
  EXPECT_EQ(entries(dir), 1);
  fs::remove_all(dir);
}

TEST(AtomicFile, LargeOutputByteForByte) { write_large(fs::temp_directory_path() / "mdnstab_test_atomic_large"); }

TEST(AtomicFile, LargeOutputWithoutDirectIo) {
  // The path a file system without O_DIRECT takes: every stage a plain write.
  setenv("MDNSTAB_DIRECT_IO", "0", 1);
  write_large(fs::temp_directory_path() / "mdnstab_test_atomic_plain", false);
  unsetenv("MDNSTAB_DIRECT_IO");
}

TEST(AtomicFile, LargeOutputOnTmpfs) {
  // tmpfs may refuse O_DIRECT: the plain writes must then carry it all.
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  write_large(fs::path("/dev/shm") / "mdnstab_test_atomic_large");
}

TEST(AtomicFile, DirectWriteRefusedCarriesOnWithPlainWrites) {
  const fs::path dir = fs::temp_directory_path() / "mdnstab_test_atomic_einval";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "big.csv").string();
  std::string want(AtomicFile::kStage * 5 / 2, '\0');
  std::mt19937_64 rng(5);
  for (char& c : want) c = char('0' + rng() % 10);
  g_direct_writes = 0;
  g_refuse_direct = 1;
  AtomicFile f;
  ASSERT_TRUE(f.open(path).is_ok());
  const Status w = f.write(want);
  const Status c = f.commit();
  const int refused = 1 - g_refuse_direct.exchange(0);
  if (g_direct_writes == 0) {
    fs::remove_all(dir);
    GTEST_SKIP() << dir << " takes no O_DIRECT";
  }
  ASSERT_TRUE(w.is_ok()) << w.message;
  ASSERT_TRUE(c.is_ok()) << c.message;
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(f.direct_bytes(), 0);  // after the refusal every stage went by plain writes
  EXPECT_TRUE(read_all(path) == want);
  EXPECT_EQ(entries(dir), 1);
  // The next file tries direct I/O again.
  const std::string again = (dir / "again.csv").string();
  AtomicFile g;
  ASSERT_TRUE(g.open(again).is_ok());
  ASSERT_TRUE(g.write(want).is_ok());
  ASSERT_TRUE(g.commit().is_ok());
  EXPECT_EQ(g.direct_bytes(), (long long)(2 * AtomicFile::kStage));
  EXPECT_TRUE(read_all(again) == want);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mdnstab
