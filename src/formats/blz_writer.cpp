// formats/blz_writer: target names, the checksum, and the streaming atomic
// writer of .blz files (layout computed up front, tensors streamed after).
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "formats/blz.h"

namespace bitlens::blz {
namespace {

struct TargetInfo {
  Target target;
  const char* name;
  const char* family;
};
constexpr TargetInfo kTargets[] = {
    {Target::kX86Avx2, "x86-avx2", "x86"},
    {Target::kX86Avx512, "x86-avx512", "x86"},
    {Target::kArm64Neon, "arm64-neon", "arm64"},
    {Target::kArm64Dotprod, "arm64-dotprod", "arm64"},
};

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

template <typename T>
void PutAt(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

std::string EncodeTensorTable(const std::vector<TensorRecord>& tensors) {
  std::string t;
  Put<uint32_t>(&t, static_cast<uint32_t>(tensors.size()));
  Put<uint32_t>(&t, 0);
  for (const auto& r : tensors) {
    Put<uint32_t>(&t, static_cast<uint32_t>(r.name.size()));
    t += r.name;
    Put<uint32_t>(&t, static_cast<uint32_t>(r.type.size()));
    t += r.type;
    Put<uint8_t>(&t, r.packed ? 1 : 0);
    Put<uint8_t>(&t, static_cast<uint8_t>(r.shape.size()));
    Put<uint16_t>(&t, 0);
    for (int64_t d : r.shape) Put<int64_t>(&t, d);
    Put<uint64_t>(&t, r.offset);
    Put<uint64_t>(&t, r.nbytes);
  }
  return t;
}

}  // namespace

Result<Target> ParseTarget(std::string_view name) {
  for (const auto& t : kTargets) {
    if (name == t.name) return t.target;
  }
  return InvalidArgument("--target '" + std::string(name) +
                         "' is not one of x86-avx2, x86-avx512, arm64-neon, arm64-dotprod");
}

std::string_view TargetName(Target target) {
  for (const auto& t : kTargets) {
    if (t.target == target) return t.name;
  }
  return "unknown";
}

std::string_view TargetFamily(Target target) {
  for (const auto& t : kTargets) {
    if (t.target == target) return t.family;
  }
  return "unknown";
}

std::string_view HostFamily() {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
  return "x86";
#elif defined(__aarch64__) || defined(_M_ARM64)
  return "arm64";
#else
  return "other";
#endif
}

Target HostDefaultTarget() { return HostFamily() == "arm64" ? Target::kArm64Neon : Target::kX86Avx2; }

uint64_t Fnv1a64(const uint8_t* data, size_t size, uint64_t h) {
  for (size_t i = 0; i < size; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

BlzWriter::~BlzWriter() {
  if (out_ != nullptr) {  // abandoned: remove the temporary file
    std::fclose(out_);
    std::remove((path_ + ".tmp").c_str());
  }
}

void BlzWriter::DeclareTensor(const std::string& name, const std::string& type, bool packed, const Shape& shape,
                              uint64_t nbytes) {
  TensorRecord r;
  r.name = name;
  r.type = type;
  r.packed = packed;
  r.shape = shape;
  r.nbytes = nbytes;
  tensors_.push_back(std::move(r));
}

Status BlzWriter::Begin() {
  // Layout: header | section table | metadata | files | tensor table | data.
  std::vector<Section> sections;
  sections.push_back({SectionKind::kMetadata, "metadata.json", 0, metadata_.size(), 0});
  for (const auto& [name, bytes] : files_) {
    if (name.empty() || name.size() >= kSectionNameBytes) {
      return InvalidArgument("embedded file name '" + name + "' must be 1 to " + std::to_string(kSectionNameBytes - 1) +
                             " bytes");
    }
    sections.push_back({SectionKind::kFile, name, 0, bytes.size(), 0});
  }
  const size_t table_index = sections.size();
  sections.push_back({SectionKind::kTensorTable, "tensors", 0, 0, 0});
  sections.push_back({SectionKind::kTensorData, "data", 0, 0, 0});

  uint64_t pos = kHeaderBytes + sections.size() * kSectionEntryBytes;
  sections[0].offset = pos;
  pos = AlignUp(pos + metadata_.size(), 8);
  for (size_t i = 0; i < files_.size(); ++i) {
    sections[1 + i].offset = pos;
    pos = AlignUp(pos + files_[i].second.size(), 8);
  }
  // The tensor table's size does not depend on the offsets it holds.
  const uint64_t table_size = EncodeTensorTable(tensors_).size();
  const uint64_t table_offset = pos;
  pos += table_size;
  const uint64_t data_offset = AlignUp(pos, kTensorAlignment);
  uint64_t end = data_offset;
  for (auto& r : tensors_) {
    r.offset = AlignUp(end, kTensorAlignment);
    end = r.offset + r.nbytes;
  }
  const std::string table = EncodeTensorTable(tensors_);
  sections[table_index].offset = table_offset;
  sections[table_index].size = table.size();
  sections.back().offset = data_offset;
  sections.back().size = end - data_offset;
  file_size_ = end;

  auto bytes_of = [&](size_t i) -> std::string_view {
    if (i == 0) return metadata_;
    if (i == table_index) return table;
    return files_[i - 1].second;
  };
  for (size_t i = 0; i + 1 < sections.size(); ++i) {
    const std::string_view b = bytes_of(i);
    sections[i].checksum = Fnv1a64(reinterpret_cast<const uint8_t*>(b.data()), b.size());
  }

  std::string head(kHeaderBytes, '\0');
  uint8_t* h = reinterpret_cast<uint8_t*>(head.data());
  std::memcpy(h, kMagic, sizeof(kMagic));
  PutAt<uint32_t>(h + 8, kFormatVersion);
  PutAt<uint32_t>(h + 12, static_cast<uint32_t>(target_));
  PutAt<uint64_t>(h + 16, flags_);
  PutAt<uint64_t>(h + 24, file_size_);
  PutAt<uint64_t>(h + 32, kHeaderBytes);
  PutAt<uint32_t>(h + 40, static_cast<uint32_t>(sections.size()));
  PutAt<uint64_t>(h + 48, Fnv1a64(h, kHeaderBytes));  // computed with the checksum field zero
  for (const Section& s : sections) {
    std::string e(kSectionEntryBytes, '\0');
    uint8_t* p = reinterpret_cast<uint8_t*>(e.data());
    PutAt<uint32_t>(p, static_cast<uint32_t>(s.kind));
    PutAt<uint64_t>(p + 8, s.offset);
    PutAt<uint64_t>(p + 16, s.size);
    PutAt<uint64_t>(p + 24, s.checksum);
    std::memcpy(p + 32, s.name.data(), s.name.size());
    head += e;
  }

  const std::string tmp = path_ + ".tmp";
  out_ = std::fopen(tmp.c_str(), "wb");
  if (out_ == nullptr) return IoError(tmp + ": cannot create (" + std::strerror(errno) + ")");
  pos_ = 0;
  auto write = [&](std::string_view b) -> Status {
    if (b.empty()) return Status::Ok();
    if (std::fwrite(b.data(), 1, b.size(), out_) != b.size()) return IoError(tmp + ": write failed");
    pos_ += b.size();
    return Status::Ok();
  };
  BL_TRY(write(head));
  for (size_t i = 0; i + 1 < sections.size(); ++i) {
    BL_TRY(Pad(sections[i].offset));
    BL_TRY(write(bytes_of(i)));
  }
  next_ = 0;
  written_in_tensor_ = 0;
  return Status::Ok();
}

Status BlzWriter::Pad(uint64_t to) {
  static const char zeros[4096] = {};
  while (pos_ < to) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof(zeros), to - pos_));
    if (std::fwrite(zeros, 1, n, out_) != n) return IoError(path_ + ".tmp: write failed");
    pos_ += n;
  }
  return Status::Ok();
}

Status BlzWriter::WritePart(const void* data, size_t nbytes) {
  if (out_ == nullptr) return Internal("BlzWriter::WritePart before Begin");
  // Zero-byte tensors complete at once; skip past them.
  while (next_ < tensors_.size() && written_in_tensor_ == tensors_[next_].nbytes && tensors_[next_].nbytes == 0) ++next_;
  if (next_ >= tensors_.size()) return Internal("BlzWriter: more tensor bytes than declared");
  const TensorRecord& r = tensors_[next_];
  if (written_in_tensor_ + nbytes > r.nbytes) {
    return Internal("BlzWriter: '" + r.name + "' declared " + std::to_string(r.nbytes) + " bytes, got more");
  }
  if (written_in_tensor_ == 0) BL_TRY(Pad(r.offset));
  if (nbytes > 0 && std::fwrite(data, 1, nbytes, out_) != nbytes) return IoError(path_ + ".tmp: write failed");
  pos_ += nbytes;
  written_in_tensor_ += nbytes;
  if (written_in_tensor_ == r.nbytes) {
    ++next_;
    written_in_tensor_ = 0;
  }
  return Status::Ok();
}

Status BlzWriter::Finish() {
  if (out_ == nullptr) return Internal("BlzWriter::Finish before Begin");
  while (next_ < tensors_.size() && tensors_[next_].nbytes == 0) ++next_;
  if (next_ != tensors_.size()) {
    return Internal("BlzWriter: tensor '" + tensors_[next_].name + "' was declared but not written");
  }
  BL_TRY(Pad(file_size_));
  const std::string tmp = path_ + ".tmp";
  const bool flushed = std::fflush(out_) == 0;
  std::fclose(out_);
  out_ = nullptr;
  if (!flushed) {
    std::remove(tmp.c_str());
    return IoError(tmp + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path_, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return IoError(path_ + ": cannot rename from " + tmp + " (" + ec.message() + ")");
  }
  return Status::Ok();
}

}  // namespace bitlens::blz
