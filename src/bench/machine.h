// bench/machine: what a benchmark ran on — CPU model, cores, last-level
// cache, RAM, the Highway target the dispatcher picks, compiler, source
// revision and the load average — so figures from two runs can be compared.
#pragma once

#include <cstdint>
#include <string>

namespace bitlens::bench {

struct MachineInfo {
  std::string cpu_model;      // /proc/cpuinfo "model name" (or "Hardware"/"CPU implementer" on ARM)
  int64_t logical_cores = 0;  // std::thread::hardware_concurrency
  int64_t llc_bytes = 0;      // largest data/unified cache of cpu0 (sysfs); 0 when unknown
  int64_t ram_bytes = 0;      // /proc/meminfo MemTotal
  std::string hwy_target;     // best Highway target compiled in and supported by this CPU
  std::string compiler;       // e.g. "gcc 12.2.0"
  std::string build_type;     // "optimized" or "debug (assertions on)"
  std::string git_describe;   // `git describe --always --dirty` of the executable's tree; "" when unavailable
  std::string kernel;         // uname -sr
  double load_average_1min = -1;  // /proc/loadavg at the time of the call; -1 when unknown
};

// Reads everything once; never fails (unknown fields stay empty / 0).
MachineInfo DescribeMachine();

// The 1-minute load average now (the machine may be shared); -1 when unknown.
double LoadAverage1Min();

// Last-level cache size in bytes (sysfs), or 0 when unknown.
int64_t LastLevelCacheBytes();

}  // namespace bitlens::bench
