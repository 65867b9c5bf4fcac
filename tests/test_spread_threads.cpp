// SpreadThreads: every worker runs once, starts on a CPU other than its creator's
// where the process may use more than one, and is free to move afterwards.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>

#include "mdnstab/spread_threads.hpp"

namespace mdnstab {
namespace {

int allowed_cpus() {
  cpu_set_t m;
  CPU_ZERO(&m);
  return sched_getaffinity(0, sizeof m, &m) == 0 ? CPU_COUNT(&m) : 1;
}

TEST(SpreadThreads, EveryWorkerRunsOnceAndIsUnpinned) {
  const int creator = sched_getcpu();
  std::atomic<int> runs{0}, apart{0}, free_to_move{0};
  const int n = 3;
  SpreadThreads pool(n, [&] {
    ++runs;
    if (sched_getcpu() != creator) ++apart;
    cpu_set_t m;
    CPU_ZERO(&m);
    if (sched_getaffinity(0, sizeof m, &m) == 0 && CPU_COUNT(&m) == allowed_cpus()) ++free_to_move;
  });
  pool.join();
  pool.join();  // idempotent
  EXPECT_EQ(runs, n);
  EXPECT_EQ(free_to_move, n);  // the start pin is released
  if (allowed_cpus() > 1) {
    EXPECT_EQ(pool.placed(), n);
    // Each started on another CPU; the scheduler may move it before it reads
    // sched_getcpu(), rarely: at least one of three must still be apart.
    EXPECT_GE(apart, 1);
  } else {
    EXPECT_EQ(pool.placed(), 0);
  }
}

TEST(SpreadThreads, ZeroWorkersIsNothing) {
  std::atomic<int> runs{0};
  {
    SpreadThreads pool(0, [&] { ++runs; });
    EXPECT_EQ(pool.placed(), 0);
  }
  EXPECT_EQ(runs, 0);
}

}  // namespace
}  // namespace mdnstab
