// base/thread_pool: one process-wide pool of worker threads. Work is split
// into contiguous ranges (by output rows) in a fixed way for a given thread
// count, so reductions stay deterministic. ParallelFor allocates nothing.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

namespace bitlens {

// A non-owning callable reference: fn(begin, end, worker_index).
class RangeFn {
 public:
  template <typename F>
  RangeFn(F& f)  // NOLINT: implicit by design
      : object_(&f), call_([](void* o, size_t b, size_t e, size_t w) {
          (*static_cast<F*>(o))(b, e, w);
        }) {}
  void operator()(size_t begin, size_t end, size_t worker) const { call_(object_, begin, end, worker); }

 private:
  void* object_;
  void (*call_)(void*, size_t, size_t, size_t);
};

// Sets the number of threads used by ParallelFor (including the caller).
// 0 means "all hardware threads". Call before heavy work; not thread-safe
// against concurrent ParallelFor calls.
void SetNumThreads(size_t n);
size_t NumThreads();

// Calls fn(begin, end, worker) on disjoint chunks covering [0, n). Chunks are
// multiples of `grain` (except the last) and are assigned statically.
void ParallelForImpl(size_t n, size_t grain, RangeFn fn);

template <typename F>
void ParallelFor(size_t n, size_t grain, F&& fn) {
  auto& ref = fn;
  ParallelForImpl(n, grain, RangeFn(ref));
}

}  // namespace bitlens
