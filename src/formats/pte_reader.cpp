// formats/pte_reader: reads a .pte's extended header, the Program tables
// bitlens uses (with the FlatBuffers verifier bounding every table, vector
// and string to the program's bytes) and the segment table, checking every
// offset, size and alignment against the file before it is used.
#include <cstring>
#include <fstream>

#include <flatbuffers/flatbuffers.h>

#include "formats/pte.h"

namespace bitlens::pte {
namespace {

using flatbuffers::Table;
using flatbuffers::Verifier;
using flatbuffers::voffset_t;
template <typename T>
using Vec = flatbuffers::Vector<T>;
using TableVec = Vec<flatbuffers::Offset<Table>>;

constexpr voffset_t Slot(int id) { return static_cast<voffset_t>(4 + 2 * id); }
constexpr uint8_t kValInt = 2, kValBool = 3;
constexpr uint8_t kInstrDelegateCall = 2;

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Bounded accessors: each returns false when the field is malformed.
bool Start(Verifier& v, const Table* t) { return t != nullptr && t->VerifyTableStart(v); }
template <typename T>
bool Scalar(Verifier& v, const Table* t, int id, T* out) {
  if (!t->VerifyField<T>(v, Slot(id), sizeof(T))) return false;
  *out = t->GetField<T>(Slot(id), T{});
  return true;
}
const Table* SubTable(Verifier& v, const Table* t, int id, bool* ok) {
  if (!t->VerifyOffset(v, Slot(id))) return *ok = false, nullptr;
  const Table* sub = t->GetPointer<const Table*>(Slot(id));
  if (sub != nullptr && !Start(v, sub)) return *ok = false, nullptr;
  return sub;
}
const TableVec* Tables(Verifier& v, const Table* t, int id, bool* ok) {
  if (!t->VerifyOffset(v, Slot(id))) return *ok = false, nullptr;
  const auto* vec = t->GetPointer<const TableVec*>(Slot(id));
  if (vec != nullptr && !v.VerifyVector(vec)) return *ok = false, nullptr;
  return vec;
}
template <typename T>
const Vec<T>* Scalars(Verifier& v, const Table* t, int id, bool* ok) {
  if (!t->VerifyOffset(v, Slot(id))) return *ok = false, nullptr;
  const auto* vec = t->GetPointer<const Vec<T>*>(Slot(id));
  if (vec != nullptr && !v.VerifyVector(vec)) return *ok = false, nullptr;
  return vec;
}
std::string Str(Verifier& v, const Table* t, int id, bool* ok) {
  if (!t->VerifyOffset(v, Slot(id))) return *ok = false, std::string();
  const auto* s = t->GetPointer<const flatbuffers::String*>(Slot(id));
  if (s == nullptr) return std::string();
  if (!v.VerifyString(s)) return *ok = false, std::string();
  return s->str();
}
std::vector<int32_t> Ints(const Vec<int32_t>* vec) {
  return vec == nullptr ? std::vector<int32_t>() : std::vector<int32_t>(vec->begin(), vec->end());
}

Status Bad(const std::string& what) { return InvalidArgument("not a valid .pte: " + what); }

Result<Method> ReadPlan(Verifier& v, const Table* plan) {
  bool ok = true;
  Method m;
  m.name = Str(v, plan, 0, &ok);
  const TableVec* values = Tables(v, plan, 2, &ok);
  const auto* inputs = Scalars<int32_t>(v, plan, 3, &ok);
  const auto* outputs = Scalars<int32_t>(v, plan, 4, &ok);
  const TableVec* chains = Tables(v, plan, 5, &ok);
  const TableVec* delegates = Tables(v, plan, 7, &ok);
  if (!ok) return Bad("execution plan '" + m.name + "' has a field outside the program");
  m.num_values = values == nullptr ? 0 : values->size();
  m.inputs = Ints(inputs);
  m.outputs = Ints(outputs);
  for (int32_t i : m.inputs) {
    if (i < 0 || static_cast<size_t>(i) >= m.num_values) return Bad("method '" + m.name + "' input index out of range");
  }
  for (int32_t i : m.outputs) {
    if (i < 0 || static_cast<size_t>(i) >= m.num_values) return Bad("method '" + m.name + "' output index out of range");
    const Table* ev = values->Get(static_cast<uint32_t>(i));
    if (!Start(v, ev)) return Bad("method '" + m.name + "' value outside the program");
    uint8_t type = 0;
    if (!Scalar<uint8_t>(v, ev, 0, &type)) return Bad("method '" + m.name + "' value type outside the program");
    if (type != kValInt && type != kValBool) continue;
    const Table* val = SubTable(v, ev, 1, &ok);
    if (!ok || val == nullptr) return Bad("method '" + m.name + "' constant outside the program");
    Constant c;
    c.is_bool = type == kValBool;
    if (c.is_bool) {
      uint8_t b = 0;
      ok = Scalar<uint8_t>(v, val, 0, &b);
      c.value = b;
    } else {
      ok = Scalar<int64_t>(v, val, 0, &c.value);
    }
    if (!ok) return Bad("method '" + m.name + "' constant outside the program");
    m.output_constants.push_back(c);
  }
  for (uint32_t i = 0; delegates != nullptr && i < delegates->size(); ++i) {
    const Table* d = delegates->Get(i);
    if (!Start(v, d)) return Bad("method '" + m.name + "' delegate outside the program");
    Delegate del;
    del.id = Str(v, d, 0, &ok);
    const Table* ref = SubTable(v, d, 1, &ok);
    const TableVec* specs = Tables(v, d, 2, &ok);
    if (!ok || ref == nullptr) return Bad("method '" + m.name + "' delegate reference outside the program");
    int8_t location = 0;
    if (!Scalar<int8_t>(v, ref, 0, &location) || !Scalar<uint32_t>(v, ref, 1, &del.index)) {
      return Bad("method '" + m.name + "' delegate reference outside the program");
    }
    del.in_segment = location == 1;
    for (uint32_t k = 0; specs != nullptr && k < specs->size(); ++k) {
      const Table* s = specs->Get(k);
      if (!Start(v, s)) return Bad("method '" + m.name + "' compile spec outside the program");
      std::string key = Str(v, s, 0, &ok);
      const auto* value = Scalars<uint8_t>(v, s, 1, &ok);
      if (!ok) return Bad("method '" + m.name + "' compile spec outside the program");
      del.compile_specs.emplace_back(
          key, value == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(value->data()), value->size()));
    }
    m.delegates.push_back(std::move(del));
  }
  for (uint32_t i = 0; chains != nullptr && i < chains->size(); ++i) {
    const Table* chain = chains->Get(i);
    if (!Start(v, chain)) return Bad("method '" + m.name + "' chain outside the program");
    const TableVec* instructions = Tables(v, chain, 2, &ok);
    if (!ok) return Bad("method '" + m.name + "' instructions outside the program");
    for (uint32_t k = 0; instructions != nullptr && k < instructions->size(); ++k) {
      const Table* ins = instructions->Get(k);
      uint8_t type = 0;
      if (!Start(v, ins) || !Scalar<uint8_t>(v, ins, 0, &type)) {
        return Bad("method '" + m.name + "' instruction outside the program");
      }
      if (type != kInstrDelegateCall) continue;
      const Table* call = SubTable(v, ins, 1, &ok);
      int32_t index = -1;
      if (!ok || call == nullptr || !Scalar<int32_t>(v, call, 0, &index)) {
        return Bad("method '" + m.name + "' delegate call outside the program");
      }
      if (index < 0 || static_cast<size_t>(index) >= m.delegates.size()) {
        return Bad("method '" + m.name + "' calls delegate " + std::to_string(index) + " of " +
                   std::to_string(m.delegates.size()));
      }
      ++m.delegate_calls;
    }
  }
  return m;
}

}  // namespace

const Method* Contents::Find(const std::string& name) const {
  for (const Method& m : methods) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

Result<Contents> Parse(const uint8_t* data, size_t size) {
  if (size < 8 + kExtendedHeaderBytes) return Bad("truncated (" + std::to_string(size) + " bytes)");
  if (std::memcmp(data + 4, kFileIdentifier, 4) != 0) return Bad("file identifier is not ET12");
  if (std::memcmp(data + 8, kHeaderMagic, 4) != 0) return Bad("no eh00 extended header");
  Contents c;
  const uint32_t header_length = Load<uint32_t>(data + 12);
  if (header_length < kExtendedHeaderMinBytes || header_length > 1024) {
    return Bad("extended header length " + std::to_string(header_length) + " is invalid");
  }
  c.program_size = Load<uint64_t>(data + 16);
  c.segment_base_offset = Load<uint64_t>(data + 24);
  c.segment_data_size = header_length >= kExtendedHeaderBytes ? Load<uint64_t>(data + 32) : 0;
  if (c.program_size < 8 + kExtendedHeaderBytes || c.program_size > size) {
    return Bad("program size " + std::to_string(c.program_size) + " is past the end of the file (" +
               std::to_string(size) + " bytes): truncated");
  }
  if (c.segment_base_offset != 0) {
    if (c.segment_base_offset < c.program_size || c.segment_base_offset > size) {
      return Bad("segment base offset " + std::to_string(c.segment_base_offset) + " is outside the file");
    }
    if (c.segment_base_offset % kSegmentAlignment != 0) return Bad("segment base offset is not 128-byte aligned");
    if (c.segment_data_size > size - c.segment_base_offset) {
      return Bad("segment data (" + std::to_string(c.segment_data_size) + " bytes) is past the end: truncated");
    }
  }

  Verifier v(data, static_cast<size_t>(c.program_size));
  const uint32_t root_offset = Load<uint32_t>(data);
  const Table* root = reinterpret_cast<const Table*>(data + root_offset);
  if (root_offset < 8 + kExtendedHeaderBytes || root_offset >= c.program_size || !Start(v, root)) {
    return Bad("program root offset " + std::to_string(root_offset) + " is outside the program");
  }
  bool ok = true;
  if (!Scalar<uint32_t>(v, root, 0, &c.version)) return Bad("program version outside the program");
  const TableVec* plans = Tables(v, root, 1, &ok);
  const TableVec* segments = Tables(v, root, 4, &ok);
  const Table* constant_segment = SubTable(v, root, 5, &ok);
  if (!ok) return Bad("program table has a field outside the program");
  if (plans == nullptr || plans->size() == 0) return Bad("no execution plans");

  const uint64_t segment_end = c.segment_base_offset == 0 ? 0 : c.segment_base_offset + c.segment_data_size;
  for (uint32_t i = 0; segments != nullptr && i < segments->size(); ++i) {
    const Table* s = segments->Get(i);
    Segment seg;
    if (!Start(v, s) || !Scalar<uint64_t>(v, s, 0, &seg.offset) || !Scalar<uint64_t>(v, s, 1, &seg.size)) {
      return Bad("segment " + std::to_string(i) + " is outside the program");
    }
    if (c.segment_base_offset == 0) return Bad("segments but no segment base offset");
    if (seg.offset % kSegmentAlignment != 0) {
      return Bad("segment " + std::to_string(i) + " offset " + std::to_string(seg.offset) + " is not 128-byte aligned");
    }
    if (seg.offset > segment_end - c.segment_base_offset || seg.size > segment_end - c.segment_base_offset - seg.offset) {
      return Bad("segment " + std::to_string(i) + " (offset " + std::to_string(seg.offset) + ", " +
                 std::to_string(seg.size) + " bytes) is past the end of the segment data");
    }
    seg.offset += c.segment_base_offset;
    c.segments.push_back(seg);
  }
  if (constant_segment != nullptr) {
    const auto* offsets = Scalars<uint64_t>(v, constant_segment, 1, &ok);
    if (!ok || !Scalar<uint32_t>(v, constant_segment, 0, &c.constant_segment)) {
      return Bad("constant segment is outside the program");
    }
    if (offsets != nullptr && offsets->size() > 0) {
      if (c.constant_segment >= c.segments.size()) return Bad("constant segment index is out of range");
      for (uint64_t off : *offsets) {
        if (off > c.segments[c.constant_segment].size) return Bad("constant offset is past its segment");
        c.constant_offsets.push_back(off);
      }
    }
    c.has_constant_segment = true;
  }
  for (uint32_t i = 0; i < plans->size(); ++i) {
    const Table* plan = plans->Get(i);
    if (!Start(v, plan)) return Bad("execution plan " + std::to_string(i) + " is outside the program");
    BL_ASSIGN_OR_RETURN(Method m, ReadPlan(v, plan));
    for (const Delegate& d : m.delegates) {
      if (d.in_segment && d.index >= c.segments.size()) {
        return Bad("method '" + m.name + "' delegate data segment " + std::to_string(d.index) + " does not exist");
      }
      if (d.in_segment && d.id == kBackendId && c.segments[d.index].offset % kWeightSegmentAlignment != 0) {
        return Bad("method '" + m.name + "' " + kBackendId + " segment is not 4096-byte aligned");
      }
    }
    c.methods.push_back(std::move(m));
  }
  return c;
}

Result<std::shared_ptr<PteFile>> PteFile::Open(const std::string& path) {
  BL_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  auto out = std::shared_ptr<PteFile>(new PteFile());
  auto parsed = Parse(file->data(), file->size());
  if (!parsed.ok()) return Status(parsed.status().code(), path + ": " + parsed.status().message());
  out->file_ = std::move(file);
  out->contents_ = std::move(parsed).value();
  return out;
}

bool PteFile::LooksLikePte(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  if (!in.read(head, sizeof(head))) return false;
  return std::memcmp(head + 4, kFileIdentifier, 4) == 0;
}

}  // namespace bitlens::pte
