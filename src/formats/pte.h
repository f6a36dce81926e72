// formats/pte: ExecuTorch program files (.pte) as bitlens writes and reads
// them: a FlatBuffers Program (identifier ET12, schema subset in
// pte_program.fbs) with the `eh00` extended header, followed by aligned data
// segments. Compute methods are one DelegateCall each to `BitlensBackend`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/mmap_file.h"
#include "base/status.h"

namespace bitlens::pte {

inline constexpr char kFileIdentifier[5] = "ET12";
inline constexpr char kHeaderMagic[5] = "eh00";
// Extended header: magic, u32 length, u64 program size, u64 segment base
// offset, u64 segment data size; placed right after the file identifier.
inline constexpr uint32_t kExtendedHeaderBytes = 32;
inline constexpr uint32_t kExtendedHeaderMinBytes = 24;  // without segment data size
inline constexpr uint64_t kSegmentAlignment = 128;
inline constexpr uint64_t kWeightSegmentAlignment = 4096;  // page-aligned so weights map in place
inline constexpr uint32_t kProgramVersion = 0;
inline constexpr const char* kBackendId = "BitlensBackend";

// ExecuTorch ScalarType ids used here.
enum class ScalarType : int8_t { kLong = 4, kFloat = 6, kBool = 11 };

struct TensorSpec {
  ScalarType scalar_type = ScalarType::kFloat;
  std::vector<int32_t> sizes;  // upper bounds (dynamic-bound shape)
};

// A constant a metadata method returns.
struct Constant {
  bool is_bool = false;
  int64_t value = 0;
};

struct MethodSpec {
  std::string name;
  // Compute method: one DelegateCall to kBackendId on `segment`'s bytes.
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  int32_t segment = -1;  // -1: a constant method
  std::vector<std::pair<std::string, std::string>> compile_specs;
  // Constant method: the values it returns (one output each).
  std::vector<Constant> constants;
};

struct SegmentSpec {
  uint64_t offset = 0;  // relative to the segment base offset
  uint64_t size = 0;
};

struct ProgramSpec {
  std::vector<MethodSpec> methods;
  std::vector<SegmentSpec> segments;
  uint32_t constant_segment = 0;  // index of the (empty) constant segment; offsets [0]
};

// The FlatBuffers Program with the extended header inserted after the file
// identifier. The header's segment base offset and data size are left 0 (see
// SetSegmentBase): the program's bytes do not depend on them.
std::string EncodeProgram(const ProgramSpec& spec);
// Patches the extended header of an encoded program.
void SetSegmentBase(std::string* program, uint64_t segment_base_offset, uint64_t segment_data_size);

// What the reader sees of a .pte.
struct Delegate {
  std::string id;
  bool in_segment = false;  // processed data location: SEGMENT (else INLINE)
  uint32_t index = 0;
  std::vector<std::pair<std::string, std::string>> compile_specs;
};
struct Method {
  std::string name;
  size_t num_values = 0;
  std::vector<int32_t> inputs, outputs;
  std::vector<Delegate> delegates;
  int32_t delegate_calls = 0;  // DelegateCall instructions in the chains
  std::vector<Constant> output_constants;  // outputs that are Int/Bool values
};
struct Segment {
  uint64_t offset = 0;  // absolute file offset
  uint64_t size = 0;
};
struct Contents {
  uint64_t program_size = 0;
  uint64_t segment_base_offset = 0;
  uint64_t segment_data_size = 0;
  uint32_t version = 0;
  std::vector<Method> methods;
  std::vector<Segment> segments;
  bool has_constant_segment = false;
  uint32_t constant_segment = 0;
  std::vector<uint64_t> constant_offsets;
  const Method* Find(const std::string& name) const;
};

// Parses a .pte image. Every offset and size is checked before use; errors
// are one line without the file name (Open prefixes it).
Result<Contents> Parse(const uint8_t* data, size_t size);

class PteFile {
 public:
  static Result<std::shared_ptr<PteFile>> Open(const std::string& path);
  // True when `path` carries the ET12 identifier at offset 4 (reads 8 bytes).
  static bool LooksLikePte(const std::string& path);
  const Contents& contents() const { return contents_; }
  const std::shared_ptr<MappedFile>& mapping() const { return file_; }

 private:
  std::shared_ptr<MappedFile> file_;
  Contents contents_;
};

}  // namespace bitlens::pte
