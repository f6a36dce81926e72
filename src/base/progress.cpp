// base/progress: bar drawing and the ETA (elapsed · remaining / done, the
// rate of the whole run so far, which is steady for tensor-by-tensor work).
#include "base/progress.h"

#include <unistd.h>

#include <algorithm>

namespace bitlens {

ProgressBar::ProgressBar(std::string label, uint64_t total, FILE* out)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      interactive_(isatty(fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()) {}

std::string ProgressBar::FormatDuration(double s) {
  if (!(s >= 0)) s = 0;
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof(buf), "%lds", t);
  return buf;
}

std::string ProgressBar::Line(uint64_t done, double elapsed, const std::string& detail) const {
  constexpr int kWidth = 24;
  const double frac = total_ > 0 ? std::min(1.0, static_cast<double>(done) / total_) : 1.0;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '.');
  std::string eta = "--";
  if (done > 0 && done < total_) eta = FormatDuration(elapsed * (total_ - done) / done);
  else if (done >= total_) eta = "0s";
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s [%s] %3.0f%%  %s elapsed, ETA %s", label_.c_str(), bar.c_str(), frac * 100,
                FormatDuration(elapsed).c_str(), eta.c_str());
  std::string line = buf;
  if (!detail.empty()) line += "  " + detail;
  return line;
}

void ProgressBar::Update(uint64_t done, const std::string& detail) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int decile = total_ > 0 ? static_cast<int>(10.0 * std::min<uint64_t>(done, total_) / total_) : 10;
  if (interactive_) {
    if (elapsed - last_print_ < 0.1 && decile == last_decile_) return;  // redraw at most 10 times a second
    std::string line = Line(done, elapsed, detail);
    const size_t width = line.size();
    if (width < last_width_) line.append(last_width_ - width, ' ');  // erase the tail of a longer line
    last_width_ = width;
    std::fprintf(out_, "\r%s", line.c_str());
  } else {
    if (elapsed - last_print_ < 5.0 && decile == last_decile_) return;
    std::fprintf(out_, "%s\n", Line(done, elapsed, detail).c_str());
  }
  std::fflush(out_);
  last_print_ = elapsed;
  last_decile_ = decile;
}

void ProgressBar::Abandon() {
  if (interactive_ && last_width_ > 0) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
}

void ProgressBar::Finish(const std::string& detail) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = label_ + ": done in " + FormatDuration(elapsed);
  if (!detail.empty()) line += ", " + detail;
  if (interactive_) {
    if (line.size() < last_width_) line.append(last_width_ - line.size(), ' ');
    std::fprintf(out_, "\r%s\n", line.c_str());
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

}  // namespace bitlens
