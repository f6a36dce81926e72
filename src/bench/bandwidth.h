// bench/bandwidth: the machine's memory bandwidth measured in-process, STREAM
// style (McCalpin's triad a = b + s·c over arrays far larger than the last-
// level cache), split over the process-wide pool like the kernels are.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "base/status.h"

namespace bitlens::bench {

struct BandwidthOptions {
  int64_t threads = 1;       // pool size for the measurement (restored afterwards)
  int64_t array_bytes = 0;   // bytes per array; 0 = max(4 × LLC, 64 MiB)
  int64_t repetitions = 10;  // passes; the best one is reported, as STREAM does
};

struct BandwidthResult {
  int64_t threads = 0;
  int64_t array_bytes = 0;
  int64_t repetitions = 0;
  // Triad: 3 arrays of traffic per pass (two reads, one write), as STREAM
  // counts it; write-allocate traffic of the destination is not counted.
  double triad_gb_per_s = 0;   // best pass
  double triad_median_gb_per_s = 0;
  // Read-only: a sum over two arrays (the access pattern of weight streaming).
  double read_gb_per_s = 0;    // best pass
  double load_average_1min = -1;  // when the measurement ended
};

// Default bytes per array for a cache of llc_bytes.
int64_t DefaultArrayBytes(int64_t llc_bytes);

// InvalidArgument for threads < 1, repetitions < 1 or arrays < 1 MiB.
// Allocates 3 arrays (released on return).
Result<BandwidthResult> MeasureBandwidth(const BandwidthOptions& options);

}  // namespace bitlens::bench
