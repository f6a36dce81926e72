#include "base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace bitlens {
namespace {

// Workers sleep on a condition variable between jobs; a job is one
// ParallelFor call, identified by a generation counter.
class ThreadPool {
 public:
  explicit ThreadPool(size_t threads) { Resize(threads); }
  ~ThreadPool() { Stop(); }

  size_t size() const { return workers_.size() + 1; }

  void Resize(size_t threads) {
    Stop();
    stop_ = false;
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    // New workers must not mistake the last finished job for a new one.
    const size_t generation = generation_;
    for (size_t i = 1; i < threads; ++i) workers_.emplace_back([this, i, generation] { WorkerLoop(i, generation); });
  }

  void Run(size_t n, size_t grain, RangeFn fn) {
    const size_t threads = size();
    grain = std::max<size_t>(grain, 1);
    const size_t units = (n + grain - 1) / grain;
    if (threads == 1 || units <= 1) {
      if (n > 0) fn(0, n, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_fn_ = &fn;
      job_n_ = n;
      job_grain_ = grain;
      pending_ = workers_.size();
      ++generation_;
    }
    cv_.notify_all();
    RunShare(0);
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    job_fn_ = nullptr;
  }

 private:
  void RunShare(size_t worker) {
    const size_t threads = size();
    const size_t units = (job_n_ + job_grain_ - 1) / job_grain_;
    const size_t per = units / threads, extra = units % threads;
    const size_t first = worker * per + std::min(worker, extra);
    const size_t count = per + (worker < extra ? 1 : 0);
    const size_t begin = first * job_grain_;
    const size_t end = std::min(job_n_, (first + count) * job_grain_);
    if (begin < end) (*job_fn_)(begin, end, worker);
  }

  void WorkerLoop(size_t index, size_t seen) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      RunShare(index);
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  bool stop_ = false;
  size_t generation_ = 0, pending_ = 0;
  RangeFn* job_fn_ = nullptr;
  size_t job_n_ = 0, job_grain_ = 1;
};

ThreadPool& Pool() {
  static ThreadPool pool(0);
  return pool;
}

}  // namespace

void SetNumThreads(size_t n) { Pool().Resize(n); }
size_t NumThreads() { return Pool().size(); }
void ParallelForImpl(size_t n, size_t grain, RangeFn fn) { Pool().Run(n, grain, fn); }

}  // namespace bitlens
