// base/mmap_file: read-only memory mapping of a whole file. Weights are used
// in place from the mapping; nothing is copied at load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace bitlens {

class MappedFile {
 public:
  // Maps `path` read-only. An empty file maps to a valid object with size 0.
  static Result<std::shared_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Reads a whole (small) file into a string, e.g. config.json.
Result<std::string> ReadTextFile(const std::string& path);

}  // namespace bitlens
