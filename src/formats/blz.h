// formats/blz: bitlens' own ahead-of-time container (.blz, format v1): a
// fixed header, a section table, embedded side files, a tensor table, and
// tensor data aligned to 4096 bytes so mapped weights are page- and
// SIMD-aligned and used in place. The byte layout is in docs/export.md.
// This room knows nothing of quantized formats: a packed tensor's type is a
// name the model loader resolves.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/mmap_file.h"
#include "base/status.h"
#include "tensor/tensor.h"

namespace bitlens::blz {

inline constexpr char kMagic[8] = {'B', 'I', 'T', 'L', 'E', 'N', 'S', 'Z'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 64;
inline constexpr size_t kSectionEntryBytes = 64;
inline constexpr size_t kSectionNameBytes = 32;
inline constexpr uint64_t kTensorAlignment = 4096;
inline constexpr uint32_t kMaxSections = 4096;
inline constexpr uint32_t kMaxTensors = 1u << 20;

// Section kinds (u32 in the section table).
enum class SectionKind : uint32_t { kMetadata = 1, kTensorTable = 2, kTensorData = 3, kFile = 4 };

// Header flags (u64).
inline constexpr uint64_t kFlagQuantized = 1;  // at least one tensor is packed

// Target ISA ids (u32 in the header). Families: x86 (1, 2), arm64 (3, 4).
enum class Target : uint32_t { kX86Avx2 = 1, kX86Avx512 = 2, kArm64Neon = 3, kArm64Dotprod = 4 };

Result<Target> ParseTarget(std::string_view name);  // "x86-avx2", ...
std::string_view TargetName(Target t);
std::string_view TargetFamily(Target t);  // "x86" or "arm64"
// The family this binary was built for ("x86", "arm64" or "other").
std::string_view HostFamily();
// The default target for this build: x86-avx2 on x86, arm64-neon on arm64.
Target HostDefaultTarget();

// FNV-1a 64 over `size` bytes (header and table checksums).
uint64_t Fnv1a64(const uint8_t* data, size_t size, uint64_t seed = 0xcbf29ce484222325ull);

struct Section {
  SectionKind kind = SectionKind::kMetadata;
  std::string name;     // e.g. "metadata.json", "tensors", "data", "tokenizer.json"
  uint64_t offset = 0;  // absolute file offset
  uint64_t size = 0;
  uint64_t checksum = 0;  // FNV-1a 64 of the bytes; 0 for the tensor data section (not hashed)
};

// One tensor-table record. `packed` tensors have a quantized-format `type`
// (e.g. "w2g64") and a logical shape [n, k]; their bytes are n packed rows in
// the kernel's layout. Other tensors have a dtype `type` ("F32", "BF16", ...).
struct TensorRecord {
  std::string name;
  std::string type;
  bool packed = false;
  Shape shape;
  uint64_t offset = 0;  // absolute file offset, a multiple of kTensorAlignment
  uint64_t nbytes = 0;
};

struct Header {
  uint32_t version = kFormatVersion;
  Target target = Target::kX86Avx2;
  uint64_t flags = 0;
  uint64_t file_size = 0;
  uint64_t section_table_offset = 0;
  uint32_t section_count = 0;
};

// A parsed .blz image. Every offset, size and alignment is checked before a
// byte it names is touched; errors are one line without the file name (Open
// prefixes it).
struct Contents {
  Header header;
  std::vector<Section> sections;
  std::string_view metadata_json;
  std::vector<std::pair<std::string, std::string_view>> files;  // embedded side files, in section order
  std::vector<TensorRecord> tensors;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
};
Result<Contents> Parse(const uint8_t* data, size_t size);

class BlzFile {
 public:
  // Maps and parses `path`. The target ISA is not checked here (see
  // CheckTargetRunsHere), so tools can inspect any file.
  static Result<std::shared_ptr<BlzFile>> Open(const std::string& path);
  // True when `path` starts with the .blz magic (cheap; reads 8 bytes).
  static bool LooksLikeBlz(const std::string& path);
  // Parses the .blz image at [offset, offset + size) of a mapping another
  // container (.pte) validated; tensor offsets stay relative to the image.
  static Result<std::shared_ptr<BlzFile>> FromMapping(std::shared_ptr<MappedFile> mapping, uint64_t offset,
                                                      uint64_t size);

  const std::string& path() const { return file_->path(); }
  const Contents& contents() const { return contents_; }
  const std::shared_ptr<MappedFile>& mapping() const { return file_; }
  // Where the image starts in the mapping (0 for a .blz file).
  uint64_t image_offset() const { return image_offset_; }
  // The embedded side file `name`, or null when absent.
  const std::string_view* FindFile(const std::string& name) const;
  // "<path>: built for arm64-neon; this is an x86 build" when the target's
  // family differs from the host's.
  Status CheckTargetRunsHere() const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint64_t image_offset_ = 0;
  Contents contents_;
};

// Streaming writer: add side files and declare every tensor, then Begin,
// then write tensor bytes in declared order, then Finish. Bytes go to
// `<path>.tmp`, renamed on Finish; an abandoned writer removes it.
class BlzWriter {
 public:
  BlzWriter(std::string path, Target target) : path_(std::move(path)), target_(target) {}
  ~BlzWriter();
  BlzWriter(const BlzWriter&) = delete;
  BlzWriter& operator=(const BlzWriter&) = delete;

  void SetMetadataJson(std::string json) { metadata_ = std::move(json); }
  void AddFile(const std::string& name, std::string bytes) { files_.emplace_back(name, std::move(bytes)); }
  // `nbytes` must equal what the tensor's bytes will be.
  void DeclareTensor(const std::string& name, const std::string& type, bool packed, const Shape& shape, uint64_t nbytes);
  void SetFlags(uint64_t flags) { flags_ = flags; }
  // Computes the layout and writes everything before the tensor data.
  Status Begin();
  // Appends bytes of the current tensor; it is complete once its declared
  // size is reached, and the next one starts at the next aligned offset.
  Status WritePart(const void* data, size_t nbytes);
  Status Finish();
  // Final file size (valid after Begin).
  uint64_t file_size() const { return file_size_; }
  const std::vector<TensorRecord>& tensors() const { return tensors_; }

 private:
  Status Pad(uint64_t to);

  std::string path_;
  Target target_;
  uint64_t flags_ = 0;
  std::string metadata_ = "{}";
  std::vector<std::pair<std::string, std::string>> files_;
  std::vector<TensorRecord> tensors_;
  size_t next_ = 0;
  uint64_t written_in_tensor_ = 0;
  uint64_t pos_ = 0;
  uint64_t file_size_ = 0;
  FILE* out_ = nullptr;
};

}  // namespace bitlens::blz
