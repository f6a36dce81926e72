// formats/blz_reader: parses and validates a .blz image (header, section
// table, tensor table) before any tensor byte is touched.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>

#include "formats/blz.h"

namespace bitlens::blz {
namespace {

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Bounds-checked little-endian cursor over one section.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}
  bool Has(uint64_t n) const { return n <= size_ - pos_; }
  template <typename T>
  bool Read(T* v) {
    if (!Has(sizeof(T))) return false;
    *v = Load<T>(data_ + pos_);
    pos_ += sizeof(T);
    return true;
  }
  bool ReadString(uint32_t max_len, std::string* s) {
    uint32_t n = 0;
    if (!Read(&n) || n > max_len || !Has(n)) return false;
    s->assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return true;
  }
  uint64_t remaining() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

std::string Str(uint64_t v) { return std::to_string(v); }

bool KnownTarget(uint32_t t) { return t >= 1 && t <= 4; }

// Element size of a dtype-typed tensor, or 0 for an unknown dtype name.
size_t ElementSize(const std::string& type) {
  auto d = DTypeFromName(type);
  return d ? DTypeSize(*d) : 0;
}

Result<std::vector<TensorRecord>> ParseTensorTable(const uint8_t* p, uint64_t size) {
  Cursor c(p, size);
  uint32_t count = 0, reserved = 0;
  if (!c.Read(&count) || !c.Read(&reserved)) return InvalidArgument("tensor table: truncated count");
  if (count > kMaxTensors) return InvalidArgument("tensor table: " + Str(count) + " tensors is too many");
  std::vector<TensorRecord> out;
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const std::string where = "tensor table entry " + Str(i);
    TensorRecord r;
    uint8_t packed = 0, rank = 0;
    uint16_t pad = 0;
    if (!c.ReadString(4096, &r.name) || r.name.empty()) return InvalidArgument(where + ": bad or truncated name");
    if (!c.ReadString(64, &r.type) || r.type.empty()) return InvalidArgument(where + " ('" + r.name + "'): bad type");
    if (!c.Read(&packed) || !c.Read(&rank) || !c.Read(&pad)) return InvalidArgument(where + ": truncated");
    if (packed > 1) return InvalidArgument(where + " ('" + r.name + "'): packed flag " + Str(packed) + " is not 0 or 1");
    if (rank > 8) return InvalidArgument(where + " ('" + r.name + "'): rank " + Str(rank) + " is above 8");
    r.packed = packed == 1;
    for (uint8_t d = 0; d < rank; ++d) {
      int64_t dim = 0;
      if (!c.Read(&dim)) return InvalidArgument(where + ": truncated shape");
      if (dim < 0 || dim > (int64_t{1} << 40)) {
        return InvalidArgument(where + " ('" + r.name + "'): dimension " + std::to_string(dim) + " is out of range");
      }
      r.shape.push_back(dim);
    }
    if (!c.Read(&r.offset) || !c.Read(&r.nbytes)) return InvalidArgument(where + ": truncated offset/size");
    out.push_back(std::move(r));
  }
  if (c.remaining() != 0) return InvalidArgument("tensor table: " + Str(c.remaining()) + " trailing bytes");
  return out;
}

}  // namespace

Result<Contents> Parse(const uint8_t* data, size_t size) {
  Contents out;
  if (size < kHeaderBytes) {
    return InvalidArgument("truncated: " + Str(size) + " bytes is shorter than the " + Str(kHeaderBytes) +
                           "-byte header");
  }
  if (std::memcmp(data, kMagic, sizeof(kMagic)) != 0) return InvalidArgument("not a .blz file (wrong magic)");
  Header& h = out.header;
  h.version = Load<uint32_t>(data + 8);
  if (h.version == 0) return InvalidArgument("format version 0 is not valid");
  if (h.version > kFormatVersion) {
    return Unsupported("format version " + Str(h.version) + " is newer than this build reads (" +
                       Str(kFormatVersion) + "); update bitlens or re-export");
  }
  const uint32_t target = Load<uint32_t>(data + 12);
  if (!KnownTarget(target)) return InvalidArgument("unknown target ISA id " + Str(target));
  h.target = static_cast<Target>(target);
  h.flags = Load<uint64_t>(data + 16);
  h.file_size = Load<uint64_t>(data + 24);
  h.section_table_offset = Load<uint64_t>(data + 32);
  h.section_count = Load<uint32_t>(data + 40);
  const uint64_t checksum = Load<uint64_t>(data + 48);
  if (h.file_size != size) {
    if (h.file_size > size) {
      return InvalidArgument("truncated: the header says " + Str(h.file_size) + " bytes but the file has " + Str(size));
    }
    return InvalidArgument("the header says " + Str(h.file_size) + " bytes but the file has " + Str(size));
  }
  uint8_t hdr[kHeaderBytes];
  std::memcpy(hdr, data, kHeaderBytes);
  std::memset(hdr + 48, 0, 8);
  if (Fnv1a64(hdr, kHeaderBytes) != checksum) return InvalidArgument("header checksum mismatch (corrupt header)");
  if (h.flags & ~kFlagQuantized) return InvalidArgument("unknown header flags " + Str(h.flags));
  if (h.section_count == 0 || h.section_count > kMaxSections) {
    return InvalidArgument("section count " + Str(h.section_count) + " is out of range");
  }
  const uint64_t table_bytes = uint64_t{h.section_count} * kSectionEntryBytes;
  if (h.section_table_offset < kHeaderBytes || h.section_table_offset > size ||
      table_bytes > size - h.section_table_offset) {
    return InvalidArgument("section table at " + Str(h.section_table_offset) + " (" + Str(table_bytes) +
                           " bytes) runs past the end of the file (" + Str(size) + " bytes)");
  }
  int metadata = -1, table = -1, tensor_data = -1;
  std::map<std::string, int> names;
  for (uint32_t i = 0; i < h.section_count; ++i) {
    const uint8_t* e = data + h.section_table_offset + uint64_t{i} * kSectionEntryBytes;
    Section s;
    const uint32_t kind = Load<uint32_t>(e);
    s.offset = Load<uint64_t>(e + 8);
    s.size = Load<uint64_t>(e + 16);
    s.checksum = Load<uint64_t>(e + 24);
    const char* name = reinterpret_cast<const char*>(e + 32);
    s.name.assign(name, strnlen(name, kSectionNameBytes));
    const std::string where = "section " + Str(i) + " ('" + s.name + "')";
    if (kind < 1 || kind > 4) return InvalidArgument(where + ": unknown kind " + Str(kind));
    s.kind = static_cast<SectionKind>(kind);
    if (s.offset < kHeaderBytes || s.offset > size || s.size > size - s.offset) {
      return InvalidArgument(where + ": bytes [" + Str(s.offset) + ", +" + Str(s.size) +
                             ") run past the end of the file (" + Str(size) + " bytes)");
    }
    if (s.kind != SectionKind::kTensorData && Fnv1a64(data + s.offset, s.size) != s.checksum) {
      return InvalidArgument(where + ": checksum mismatch (corrupt section)");
    }
    if (s.name.empty() || !names.emplace(s.name, static_cast<int>(i)).second) {
      return InvalidArgument(where + ": empty or duplicate section name");
    }
    int* slot = s.kind == SectionKind::kMetadata ? &metadata
                : s.kind == SectionKind::kTensorTable ? &table
                : s.kind == SectionKind::kTensorData ? &tensor_data
                                                     : nullptr;
    if (slot != nullptr) {
      if (*slot >= 0) return InvalidArgument(where + ": a second section of kind " + Str(kind));
      *slot = static_cast<int>(i);
    }
    out.sections.push_back(std::move(s));
  }
  if (metadata < 0) return InvalidArgument("no metadata section");
  if (table < 0) return InvalidArgument("no tensor table section");
  if (tensor_data < 0) return InvalidArgument("no tensor data section");
  const Section& md = out.sections[metadata];
  out.metadata_json = std::string_view(reinterpret_cast<const char*>(data + md.offset), md.size);
  for (const Section& s : out.sections) {
    if (s.kind == SectionKind::kFile) {
      out.files.emplace_back(s.name, std::string_view(reinterpret_cast<const char*>(data + s.offset), s.size));
    }
  }
  const Section& ds = out.sections[tensor_data];
  if (ds.offset % kTensorAlignment != 0) {
    return InvalidArgument("tensor data section offset " + Str(ds.offset) + " is not a multiple of " +
                           Str(kTensorAlignment));
  }
  out.data_offset = ds.offset;
  out.data_size = ds.size;
  const Section& ts = out.sections[table];
  BL_ASSIGN_OR_RETURN(out.tensors, ParseTensorTable(data + ts.offset, ts.size));

  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < out.tensors.size(); ++i) {
    const TensorRecord& r = out.tensors[i];
    const std::string where = "tensor '" + r.name + "'";
    if (!seen.emplace(r.name, i).second) return InvalidArgument(where + " appears twice in the tensor table");
    if (r.offset % kTensorAlignment != 0) {
      return InvalidArgument(where + ": data offset " + Str(r.offset) + " is not aligned to " + Str(kTensorAlignment) +
                             " bytes");
    }
    if (r.offset < ds.offset || r.offset > ds.offset + ds.size || r.nbytes > ds.offset + ds.size - r.offset) {
      return InvalidArgument(where + ": bytes [" + Str(r.offset) + ", +" + Str(r.nbytes) +
                             ") lie outside the tensor data section [" + Str(ds.offset) + ", +" + Str(ds.size) + ")");
    }
    if (r.packed) {
      if (r.shape.size() != 2) return InvalidArgument(where + ": a packed tensor's shape must be [n, k]");
    } else {
      const size_t es = ElementSize(r.type);
      if (es == 0) return InvalidArgument(where + ": unknown dtype '" + r.type + "'");
      // Dims are ≤ 2^40 each; the running product is checked so it cannot wrap.
      uint64_t n = 1;
      for (int64_t d : r.shape) {
        if (d != 0 && n > (uint64_t{1} << 50) / static_cast<uint64_t>(d)) {
          return InvalidArgument(where + ": shape " + ShapeToString(r.shape) + " is too large");
        }
        n *= static_cast<uint64_t>(d);
      }
      if (n * es != r.nbytes) {
        return InvalidArgument(where + ": " + r.type + " " + ShapeToString(r.shape) + " needs " + Str(n * es) +
                               " bytes but the table gives " + Str(r.nbytes));
      }
    }
  }
  // No two tensors may share bytes.
  std::vector<const TensorRecord*> sorted;
  for (const auto& r : out.tensors) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->offset < sorted[i - 1]->offset + sorted[i - 1]->nbytes) {
      return InvalidArgument("tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap");
    }
  }
  return out;
}

Result<std::shared_ptr<BlzFile>> BlzFile::Open(const std::string& path) {
  BL_ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path));
  auto file = std::shared_ptr<BlzFile>(new BlzFile());
  file->file_ = mapped;
  auto contents = Parse(mapped->data(), mapped->size());
  if (!contents.ok()) return contents.status().WithContext(path);
  file->contents_ = std::move(contents).value();
  return file;
}

Result<std::shared_ptr<BlzFile>> BlzFile::FromMapping(std::shared_ptr<MappedFile> mapping, uint64_t offset,
                                                      uint64_t size) {
  if (offset > mapping->size() || size > mapping->size() - offset) {
    return InvalidArgument(mapping->path() + ": .blz image is past the end of the file");
  }
  auto file = std::shared_ptr<BlzFile>(new BlzFile());
  auto contents = Parse(mapping->data() + offset, static_cast<size_t>(size));
  if (!contents.ok()) return contents.status().WithContext(mapping->path());
  file->file_ = std::move(mapping);
  file->image_offset_ = offset;
  file->contents_ = std::move(contents).value();
  return file;
}

bool BlzFile::LooksLikeBlz(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof(kMagic)] = {};
  if (!in.read(magic, sizeof(magic))) return false;
  return std::memcmp(magic, kMagic, sizeof(kMagic)) == 0;
}

const std::string_view* BlzFile::FindFile(const std::string& name) const {
  for (const auto& [n, bytes] : contents_.files) {
    if (n == name) return &bytes;
  }
  return nullptr;
}

Status BlzFile::CheckTargetRunsHere() const {
  const Target t = contents_.header.target;
  if (TargetFamily(t) != HostFamily()) {
    return Unsupported(path() + ": built for " + std::string(TargetName(t)) + "; this is an " +
                       std::string(HostFamily()) + " build (re-export with --target for this machine)");
  }
  return Status::Ok();
}

}  // namespace bitlens::blz
