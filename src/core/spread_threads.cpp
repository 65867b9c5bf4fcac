// SpreadThreads: pthreads created with an affinity attribute, released at start.
#include "mdnstab/spread_threads.hpp"

#include <pthread.h>
#include <sched.h>

#include <stdexcept>
#include <system_error>

namespace mdnstab {

struct SpreadThreads::Worker {
  pthread_t id{};
  bool running = false;
  bool release = false;
  cpu_set_t mask{};  // the process's mask, restored at start where pinned
  std::function<void()> fn;

  static void* main(void* p) {
    auto* w = static_cast<Worker*>(p);
    if (w->release) pthread_setaffinity_np(pthread_self(), sizeof w->mask, &w->mask);
    w->fn();
    return nullptr;
  }
};

SpreadThreads::SpreadThreads(int count, std::function<void()> fn) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  std::vector<int> others;  // the CPUs we may use, the caller's excluded
  if (sched_getaffinity(0, sizeof mask, &mask) == 0) {
    const int self = sched_getcpu();
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &mask) && c != self) others.push_back(c);
  }
  try {
    for (int t = 0; t < count; ++t) {
      auto* w = new Worker;
      workers_.push_back(w);
      w->fn = fn;
      w->mask = mask;
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      if (!others.empty()) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(others[size_t(t) % others.size()], &one);
        w->release = pthread_attr_setaffinity_np(&attr, sizeof one, &one) == 0;
      }
      int rc = pthread_create(&w->id, &attr, &Worker::main, w);
      if (rc != 0 && w->release) {  // a CPU set the kernel refuses: start it unpinned
        pthread_attr_destroy(&attr);
        pthread_attr_init(&attr);
        w->release = false;
        rc = pthread_create(&w->id, &attr, &Worker::main, w);
      }
      pthread_attr_destroy(&attr);
      if (rc != 0) throw std::system_error(rc, std::generic_category(), "cannot start a worker thread");
      w->running = true;
      placed_ += w->release ? 1 : 0;
    }
  } catch (...) {
    join();
    throw;
  }
}

void SpreadThreads::join() {
  for (Worker* w : workers_) {
    if (w->running) pthread_join(w->id, nullptr);
    delete w;
  }
  workers_.clear();
}

}  // namespace mdnstab
