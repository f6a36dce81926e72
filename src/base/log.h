// base/log: leveled logging to stderr. Library code logs sparingly; the level
// comes from BITLENS_LOG (debug|info|warn|error) or SetLogLevel.
#pragma once

#include <cstdio>
#include <string>

namespace bitlens {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kQuiet = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void LogMessage(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace bitlens

#define BL_LOG_DEBUG(...) ::bitlens::LogMessage(::bitlens::LogLevel::kDebug, __VA_ARGS__)
#define BL_LOG_INFO(...) ::bitlens::LogMessage(::bitlens::LogLevel::kInfo, __VA_ARGS__)
#define BL_LOG_WARN(...) ::bitlens::LogMessage(::bitlens::LogLevel::kWarn, __VA_ARGS__)
#define BL_LOG_ERROR(...) ::bitlens::LogMessage(::bitlens::LogLevel::kError, __VA_ARGS__)
