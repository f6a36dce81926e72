// bitlens data: writes a split of the synthetic vision-language data (PNG
// images plus <split>.jsonl in the calibration format) — see train/data/vqa_data.h.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>

#include "base/progress.h"
#include "commands.h"
#include "train/data/vqa_data.h"

namespace bitlens::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void OnDataInterrupt(int) { g_interrupted.store(true); }

struct DataFlags {
  std::string split;
  std::string count;
  std::string seed = "1";
  std::string image_size = "64";
  std::string catalog_fraction;
  std::string output;
};

// Whole-string integer parse with a one-line error naming the flag.
Result<int64_t> ParseInt(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
    return InvalidArgument(flag + " '" + text + "' is not an integer in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
  }
  return static_cast<int64_t>(v);
}

Status RunData(const DataFlags& f) {
  if (f.split.empty()) return InvalidArgument("data needs --split train|validation|test");
  const auto split = train::SplitFromName(f.split);
  if (!split) return InvalidArgument("--split '" + f.split + "' is not one of train, validation, test");
  if (f.count.empty()) return InvalidArgument("data needs --count N (samples to write)");
  if (f.output.empty()) return InvalidArgument("data needs -o DIR");
  train::DataOptions options;
  BL_ASSIGN_OR_RETURN(const int64_t count, ParseInt("--count", f.count, 1, 100'000'000));
  // Seeds are 64-bit; negative input is refused rather than wrapped.
  errno = 0;
  char* end = nullptr;
  const unsigned long long seed = std::strtoull(f.seed.c_str(), &end, 10);
  if (f.seed.empty() || f.seed[0] == '-' || *end != '\0' || errno == ERANGE) {
    return InvalidArgument("--seed '" + f.seed + "' is not a non-negative 64-bit integer");
  }
  options.seed = seed;
  BL_ASSIGN_OR_RETURN(const int64_t size,
                      ParseInt("--image-size", f.image_size, train::kMinImageSize, train::kMaxImageSize));
  options.image_size = static_cast<int>(size);
  if (!f.catalog_fraction.empty()) {
    const double v = std::strtod(f.catalog_fraction.c_str(), &end);
    if (*end != '\0' || !(v >= 0.0 && v <= 1.0)) {
      return InvalidArgument("--catalog-fraction '" + f.catalog_fraction + "' is not a number in [0, 1]");
    }
    options.catalog_fraction = v;
  }
  const auto start = std::chrono::steady_clock::now();
  g_interrupted.store(false);
  auto old_int = std::signal(SIGINT, OnDataInterrupt);
  auto old_term = std::signal(SIGTERM, OnDataInterrupt);
  std::unique_ptr<ProgressBar> bar;
  train::WriteSplitHooks hooks;
  hooks.cancel = &g_interrupted;
  hooks.on_progress = [&](int64_t done, int64_t total) {
    if (total < 5000) return;  // small splits finish before a bar is worth drawing
    if (!bar) bar = std::make_unique<ProgressBar>("data " + f.split, static_cast<uint64_t>(total));
    bar->Update(static_cast<uint64_t>(done), std::to_string(done) + " samples");
  };
  const Status written = train::WriteSplit(options, *split, count, f.output, hooks);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (!written.ok()) {
    if (bar) bar->Abandon();
    return written;
  }
  if (bar) bar->Finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %lld %s samples (%dx%d, seed %llu) to %s/%s.jsonl and %s/%s/ in %.1f s\n",
              static_cast<long long>(count), f.split.c_str(), options.image_size, options.image_size,
              static_cast<unsigned long long>(options.seed), f.output.c_str(), f.split.c_str(), f.output.c_str(),
              f.split.c_str(), secs);
  return Status::Ok();
}

}  // namespace

void AddDataCommand(CLI::App& app, Status* result) {
  auto flags = std::make_shared<DataFlags>();
  auto* cmd = app.add_subcommand("data", "Write a split of the synthetic vision-language data (PNG + JSONL)");
  cmd->add_option("--split", flags->split, "train | validation | test (the splits never share a scene)");
  cmd->add_option("--count", flags->count, "number of samples (indices 0..N-1 of the split)");
  cmd->add_option("--seed", flags->seed, "random seed; the same seed writes the same bytes")->capture_default_str();
  cmd->add_option("--image-size", flags->image_size, "image side in pixels")->capture_default_str();
  cmd->add_option("--catalog-fraction", flags->catalog_fraction, "share of catalogue-item samples (default 0.15)");
  cmd->add_option("-o,--output", flags->output, "output directory: DIR/<split>.jsonl and DIR/<split>/*.png");
  cmd->callback([flags, result] { *result = RunData(*flags); });
}

}  // namespace bitlens::cli
