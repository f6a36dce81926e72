// bench/machine: reads /proc and /sys (Linux; other systems leave fields empty).
#include "bench/machine.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <hwy/targets.h>

namespace bitlens::bench {
namespace {

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  const size_t end = s.find_last_not_of(ws);
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

// Value of the first "key : value" line of /proc/cpuinfo whose key is `key`.
std::string CpuInfoField(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (Trim(line.substr(0, colon)) == key) return Trim(line.substr(colon + 1));
  }
  return {};
}

// "32768K" / "2M" / "512" -> bytes.
int64_t ParseCacheSize(const std::string& text) {
  int64_t value = 0;
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') value = value * 10 + (text[i++] - '0');
  if (i < text.size() && (text[i] == 'K' || text[i] == 'k')) value <<= 10;
  if (i < text.size() && (text[i] == 'M' || text[i] == 'm')) value <<= 20;
  return value;
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return Trim(line);
}

// `git describe` run in the directory of the running executable (a build tree
// inside a checkout); empty when git or the checkout is absent.
std::string GitDescribe() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const std::string dir = exe.parent_path().string();
  if (dir.find('\'') != std::string::npos) return {};
  const std::string cmd = "git -C '" + dir + "' describe --always --dirty --tags 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {};
  std::array<char, 256> buf{};
  std::string out;
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe) != nullptr) out += buf.data();
  pclose(pipe);
  return Trim(out);
}

}  // namespace

double LoadAverage1Min() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  if (!(in >> load)) return -1;
  return load;
}

int64_t LastLevelCacheBytes() {
  int64_t best = 0;
  int best_level = 0;
  for (int index = 0; index < 16; ++index) {
    const std::string base = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    const std::string level_text = ReadFirstLine(base + "level");
    if (level_text.empty()) break;
    if (ReadFirstLine(base + "type") == "Instruction") continue;
    const int level = std::atoi(level_text.c_str());
    const int64_t bytes = ParseCacheSize(ReadFirstLine(base + "size"));
    if (level > best_level || (level == best_level && bytes > best)) {
      best_level = level;
      best = bytes;
    }
  }
  return best;
}

MachineInfo DescribeMachine() {
  MachineInfo m;
  m.cpu_model = CpuInfoField("model name");
  if (m.cpu_model.empty()) m.cpu_model = CpuInfoField("Hardware");
  if (m.cpu_model.empty()) {
    const std::string impl = CpuInfoField("CPU implementer"), part = CpuInfoField("CPU part");
    if (!impl.empty()) m.cpu_model = "implementer " + impl + " part " + part;
  }
  if (m.cpu_model.empty()) m.cpu_model = "unknown";
  m.logical_cores = std::max(1u, std::thread::hardware_concurrency());
  m.llc_bytes = LastLevelCacheBytes();
  {
    std::ifstream in("/proc/meminfo");
    std::string key;
    int64_t kib = 0;
    if (in >> key >> kib && key == "MemTotal:") m.ram_bytes = kib * 1024;
  }
  // The dispatcher takes the best (lowest-bit) target that is both compiled
  // in and supported by the CPU; kernels are compiled with the same targets.
  const int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  m.hwy_target = targets != 0 ? hwy::TargetName(targets & -targets) : "none";
#if defined(__clang__)
  m.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  m.compiler = "gcc " __VERSION__;
#else
  m.compiler = "unknown";
#endif
#ifdef NDEBUG
  m.build_type = "optimized";
#else
  m.build_type = "debug (assertions on)";
#endif
  m.git_describe = GitDescribe();
  struct utsname u {};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release;
  m.load_average_1min = LoadAverage1Min();
  return m;
}

}  // namespace bitlens::bench
