// Shared helpers for the unit tests: where the test data lives, a scratch
// directory per test, and running the bitlens CLI as a subprocess.
#pragma once

#include <string>

#include <gtest/gtest.h>

namespace bitlens::testing {

// $BITLENS_TEST_DATA, else <source>/../shared/data. Empty if it does not exist.
std::string TestDataDir();
// TestDataDir() + "/" + relative, or "" when the data is absent.
std::string TestDataPath(const std::string& relative);
std::string SourceDir();
// A fresh empty directory unique to the running test (each call empties it),
// removed at exit unless BITLENS_KEEP_TEST_FILES is set.
std::string ScratchDir();

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the bitlens CLI with `args` (already shell-quoted where needed).
CliResult RunCli(const std::string& args);

}  // namespace bitlens::testing

// Skips the current test when ../shared/data/<relative> is absent.
#define BL_REQUIRE_TEST_DATA(var, relative)                                      \
  const std::string var = ::bitlens::testing::TestDataPath(relative);            \
  if (var.empty()) GTEST_SKIP() << "test data '" << (relative)                   \
                                << "' not found (set BITLENS_TEST_DATA or place ../shared/data)"
