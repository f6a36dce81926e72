// formats/safetensors: zero-copy reader and atomic writer for the safetensors
// format, and a Checkpoint that joins sharded files through
// model.safetensors.index.json.
//
// Byte layout (https://github.com/huggingface/safetensors):
//   u64 little-endian N | N bytes of JSON header | data buffer
//   header: {"__metadata__": {str: str}?,
//            "<name>": {"dtype": "F32|F16|BF16|I8|U8|I32|I64",
//                       "shape": [int...], "data_offsets": [begin, end]}, ...}
//   offsets are relative to the start of the data buffer (byte 8 + N).
// The reader validates the whole header before any tensor data is touched.
#pragma once

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/mmap_file.h"
#include "base/status.h"
#include "tensor/tensor.h"

namespace bitlens {

struct TensorEntry {
  std::string name;
  DType dtype;
  Shape shape;
  size_t begin = 0;  // byte offsets into the data buffer
  size_t end = 0;
};

class SafetensorsFile {
 public:
  static Result<std::shared_ptr<SafetensorsFile>> Open(const std::string& path);
  // Parses and validates an in-memory image of a file (used by the fuzzer).
  static Result<std::vector<TensorEntry>> ParseHeader(const uint8_t* data, size_t size,
                                                      std::map<std::string, std::string>* metadata);
  // A tensor table over a mapping that another container (.blz) parsed and
  // validated: entry offsets are relative to byte `data_start` of `file`.
  static std::shared_ptr<SafetensorsFile> FromMapping(std::shared_ptr<MappedFile> file, size_t data_start,
                                                      std::vector<TensorEntry> entries);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorEntry* Find(const std::string& name) const;
  // A view over the mapped bytes; keeps the mapping alive.
  Tensor View(const TensorEntry& entry) const;

 private:
  std::shared_ptr<MappedFile> file_;
  size_t data_start_ = 0;
  std::vector<TensorEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint directory: model.safetensors, or the shards
// named by model.safetensors.index.json, or any single *.safetensors path.
class Checkpoint {
 public:
  static Result<Checkpoint> Open(const std::string& path);
  // Joins already opened tensor tables (names must be unique across them).
  static Result<Checkpoint> FromFiles(std::vector<std::shared_ptr<SafetensorsFile>> files);

  bool Has(const std::string& name) const { return where_.count(name) != 0; }
  Result<Tensor> Get(const std::string& name) const;
  // Entry metadata (dtype, shape) without touching data; null if absent.
  const TensorEntry* Find(const std::string& name) const;
  std::vector<std::string> Names() const;
  // Which file holds `name` (for error messages).
  std::string FileOf(const std::string& name) const;
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

// Streaming writer: declare every tensor, then write their bytes in the
// declared order. Data goes to `<path>.tmp` and is renamed on Finish, so a
// crash or error never leaves a half-written file under the final name.
class SafetensorsWriter {
 public:
  explicit SafetensorsWriter(std::string path) : path_(std::move(path)) {}
  ~SafetensorsWriter();

  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  void Declare(const std::string& name, DType dtype, const Shape& shape);
  // Writes the header; call after the last Declare.
  Status Begin();
  // Writes the bytes of the next declared tensor (nbytes must match).
  Status Write(const void* data, size_t nbytes);
  // Streams the next declared tensor in pieces: each call appends `nbytes`;
  // the tensor is complete once its declared size is reached. Lets writers
  // of multi-GB tensors hold only one chunk in memory.
  Status WritePart(const void* data, size_t nbytes);
  Status Finish();
  size_t total_bytes() const;

 private:
  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorEntry> entries_;
  size_t next_ = 0;
  size_t next_written_ = 0;  // bytes of entries_[next_] already written by WritePart
  FILE* out_ = nullptr;
};

// Convenience: writes `tensors` (name -> tensor, any contiguous dtype).
Status WriteSafetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace bitlens
