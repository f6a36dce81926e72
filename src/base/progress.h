// base/progress: a progress bar with ETA for long runs, on stderr. On a
// terminal it redraws one line in place; otherwise (logs, pipes, CI) it
// prints a plain line at most every few seconds and at every 10 %.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace bitlens {

class ProgressBar {
 public:
  // `total` units of work (bytes, parameters, ...); `label` starts each line.
  ProgressBar(std::string label, uint64_t total, FILE* out = stderr);
  // Forces the plain-line mode on or off (tests; the default asks isatty).
  void SetInteractive(bool interactive) { interactive_ = interactive; }

  // `done` units finished; `detail` (e.g. the tensor being written) ends the line.
  void Update(uint64_t done, const std::string& detail = "");
  // The last line, ending with a newline: "<label>: done in 12.3 s".
  void Finish(const std::string& detail = "");
  // Ends a redrawn line (on a terminal) so an error message starts on its own line.
  void Abandon();

  // "1h02m", "3m07s", "12s" (rounded), for ETA and elapsed fields.
  static std::string FormatDuration(double seconds);
  // The line Update draws, without control characters.
  std::string Line(uint64_t done, double elapsed, const std::string& detail) const;

 private:
  std::string label_;
  uint64_t total_;
  FILE* out_;
  bool interactive_;
  std::chrono::steady_clock::time_point start_;
  double last_print_ = -1e9;
  int last_decile_ = -1;
  size_t last_width_ = 0;
};

}  // namespace bitlens
