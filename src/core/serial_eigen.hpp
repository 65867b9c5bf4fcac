// Keeps Eigen's matrix products on the calling thread while alive. Eigen splits
// large products over OpenMP threads (nbThreads() = omp_get_max_threads()); the
// chunk references are called from all-core loops over problems, and a lone call
// on a loaded machine spends more time in thread hand-offs than in arithmetic.
// nthreads-var is a per-task ICV, so other threads are not affected.
#pragma once

#include <omp.h>

namespace mdnstab {

class SerialEigenProducts {
 public:
  SerialEigenProducts() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SerialEigenProducts() { omp_set_num_threads(saved_); }
  SerialEigenProducts(const SerialEigenProducts&) = delete;
  SerialEigenProducts& operator=(const SerialEigenProducts&) = delete;

 private:
  int saved_;
};

}  // namespace mdnstab
