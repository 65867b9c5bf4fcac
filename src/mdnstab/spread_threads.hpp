// Worker threads that start on an idle CPU. Linux queues a new thread on its
// parent's CPU and moves it to another only at the next load balance, which on
// the VMs we measure on takes 1 to 4 ms: longer than a whole million-point sweep.
// Each worker here is created pinned to a CPU other than the caller's (from the
// process's affinity mask, in turn) and unpinned as soon as it runs, so the
// scheduler is free to move it afterwards.
#pragma once

#include <functional>
#include <vector>

namespace mdnstab {

class SpreadThreads {
 public:
  // Runs fn on `count` new threads.
  SpreadThreads(int count, std::function<void()> fn);
  SpreadThreads(const SpreadThreads&) = delete;
  SpreadThreads& operator=(const SpreadThreads&) = delete;
  ~SpreadThreads() { join(); }
  // Waits for every thread; idempotent.
  void join();
  // How many were created pinned apart (0 where the mask has one CPU or pinning failed).
  int placed() const { return placed_; }

 private:
  struct Worker;
  std::vector<Worker*> workers_;
  int placed_ = 0;
};

}  // namespace mdnstab
