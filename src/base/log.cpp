#include "base/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdlib>
#include <cstring>

namespace bitlens {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("BITLENS_LOG");
  if (env == nullptr) return LogLevel::kWarn;
  if (std::strcmp(env, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(env, "info") == 0) return LogLevel::kInfo;
  if (std::strcmp(env, "error") == 0) return LogLevel::kError;
  if (std::strcmp(env, "quiet") == 0) return LogLevel::kQuiet;
  return LogLevel::kWarn;
}

std::atomic<int>& Level() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnv())};
  return level;
}

}  // namespace

void SetLogLevel(LogLevel level) { Level().store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(Level().load()); }

void LogMessage(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) < Level().load()) return;
  static const char* kNames[] = {"debug", "info", "warning", "error"};
  char buffer[2048];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buffer, sizeof(buffer), fmt, args);
  va_end(args);
  std::fprintf(stderr, "bitlens %s: %s\n", kNames[static_cast<int>(level)], buffer);
}

}  // namespace bitlens
