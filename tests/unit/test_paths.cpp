#include "test_paths.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bitlens::testing {
namespace fs = std::filesystem;

std::string SourceDir() { return BITLENS_SOURCE_DIR; }

std::string TestDataDir() {
  const char* env = std::getenv("BITLENS_TEST_DATA");
  fs::path dir = env ? fs::path(env) : fs::path(SourceDir()) / ".." / "shared" / "data";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "";
  return fs::canonical(dir, ec).string();
}

std::string TestDataPath(const std::string& relative) {
  const std::string dir = TestDataDir();
  if (dir.empty()) return "";
  fs::path p = fs::path(dir) / relative;
  std::error_code ec;
  return fs::exists(p, ec) ? p.string() : "";
}

// Removes this process's scratch tree at exit unless BITLENS_KEEP_TEST_FILES
// is set (to look at what a failing test left behind).
struct ScratchCleanup {
  ~ScratchCleanup() {
    if (std::getenv("BITLENS_KEEP_TEST_FILES") != nullptr) return;
    std::error_code ec;
    fs::remove_all(fs::temp_directory_path() / ("bitlens-test-" + std::to_string(::getpid())), ec);
  }
};
ScratchCleanup scratch_cleanup;

std::string ScratchDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "bitlens";
  fs::path dir = fs::temp_directory_path() / ("bitlens-test-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

namespace {
std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

CliResult RunCli(const std::string& args) {
  // Output goes to a directory of its own: calling ScratchDir() here would
  // wipe the test's scratch directory that the command is working on.
  static int calls = 0;
  const fs::path dir = fs::temp_directory_path() / ("bitlens-test-" + std::to_string(::getpid())) /
                       ("cli-" + std::to_string(++calls));
  fs::create_directories(dir);
  const fs::path out = dir / "stdout", err = dir / "stderr";
  const std::string cmd = std::string(BITLENS_CLI_PATH) + " " + args + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

}  // namespace bitlens::testing
