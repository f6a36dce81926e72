#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

namespace bitlens {
namespace {

using json = nlohmann::json;
constexpr size_t kMaxHeaderBytes = 100u << 20;  // same cap as the reference implementation

bool MulOverflows(size_t a, size_t b, size_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

Result<std::vector<TensorEntry>> SafetensorsFile::ParseHeader(const uint8_t* data, size_t size,
                                                              std::map<std::string, std::string>* metadata) {
  if (size < 8) {
    return InvalidArgument("file has " + std::to_string(size) + " bytes, too short for the 8-byte header size (truncated?)");
  }
  uint64_t n = 0;
  std::memcpy(&n, data, 8);  // little-endian hosts only (x86-64, arm64)
  if (n > kMaxHeaderBytes) return InvalidArgument("header size " + std::to_string(n) + " exceeds the 100 MiB limit (not a safetensors file?)");
  if (n > size - 8) {
    return InvalidArgument("header claims " + std::to_string(n) + " bytes but the file has only " +
                           std::to_string(size - 8) + " after the size field (truncated?)");
  }
  const char* text = reinterpret_cast<const char*>(data + 8);
  json header = json::parse(text, text + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return InvalidArgument("header is not valid JSON");
  if (!header.is_object()) return InvalidArgument("header is not a JSON object");

  const size_t data_size = size - 8 - n;
  std::vector<TensorEntry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return InvalidArgument("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) return InvalidArgument("__metadata__." + m.key() + " is not a string");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object()) return InvalidArgument(where + " is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return InvalidArgument(where + " has no string 'dtype'");
    if (sh == v.end() || !sh->is_array()) return InvalidArgument(where + " has no 'shape' array");
    if (off == v.end() || !off->is_array() || off->size() != 2) return InvalidArgument(where + " has no 'data_offsets' pair");
    TensorEntry e;
    e.name = name;
    auto dtype = DTypeFromName(dt->get<std::string>());
    if (!dtype) return Unsupported(where + " has unsupported dtype '" + dt->get<std::string>() + "'");
    e.dtype = *dtype;
    size_t count = 1;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned()) return InvalidArgument(where + " has a shape entry that is not a non-negative integer");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 48) || MulOverflows(count, dim, &count)) return InvalidArgument(where + " has an absurd shape");
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    if (!(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned()) {
      return InvalidArgument(where + " has data_offsets that are not non-negative integers");
    }
    const uint64_t b = (*off)[0].get<uint64_t>(), en = (*off)[1].get<uint64_t>();
    if (b > en) return InvalidArgument(where + " has data_offsets begin " + std::to_string(b) + " > end " + std::to_string(en));
    if (en > data_size) {
      return InvalidArgument(where + " ends at byte " + std::to_string(en) + " of the data buffer but the file holds only " +
                             std::to_string(data_size) + " data bytes (truncated download?)");
    }
    size_t bytes = 0;
    if (MulOverflows(count, DTypeSize(e.dtype), &bytes) || bytes != en - b) {
      return InvalidArgument(where + ": dtype " + std::string(DTypeName(e.dtype)) + " x shape " + ShapeToString(e.shape) +
                             " needs " + std::to_string(count * DTypeSize(e.dtype)) + " bytes but data_offsets span " +
                             std::to_string(en - b));
    }
    e.begin = b;
    e.end = en;
    entries.push_back(std::move(e));
  }
  // No two tensors may share bytes (a zero-size tensor has none to share).
  std::vector<const TensorEntry*> sorted;
  for (const auto& e : entries) {
    if (e.end > e.begin) sorted.push_back(&e);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->begin < sorted[i - 1]->end) {
      return InvalidArgument("tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap in the data buffer");
    }
  }
  return entries;
}

Result<std::shared_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  BL_ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path));
  auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  file->file_ = mapped;
  auto entries = ParseHeader(mapped->data(), mapped->size(), &file->metadata_);
  if (!entries.ok()) return entries.status().WithContext(path);
  file->entries_ = std::move(entries).value();
  uint64_t n = 0;
  std::memcpy(&n, mapped->data(), 8);
  file->data_start_ = 8 + n;
  for (size_t i = 0; i < file->entries_.size(); ++i) file->index_[file->entries_[i].name] = i;
  return file;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::FromMapping(std::shared_ptr<MappedFile> mapped, size_t data_start,
                                                             std::vector<TensorEntry> entries) {
  auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  file->file_ = std::move(mapped);
  file->data_start_ = data_start;
  file->entries_ = std::move(entries);
  for (size_t i = 0; i < file->entries_.size(); ++i) file->index_[file->entries_[i].name] = i;
  return file;
}

Result<Checkpoint> Checkpoint::FromFiles(std::vector<std::shared_ptr<SafetensorsFile>> files) {
  Checkpoint ckpt;
  for (auto& file : files) {
    const size_t idx = ckpt.files_.size();
    for (const auto& e : file->entries()) {
      if (ckpt.where_.count(e.name)) return InvalidArgument(file->path() + ": tensor '" + e.name + "' appears twice");
      ckpt.where_[e.name] = idx;
    }
    ckpt.files_.push_back(std::move(file));
  }
  return ckpt;
}

const TensorEntry* SafetensorsFile::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Tensor SafetensorsFile::View(const TensorEntry& e) const {
  const uint8_t* p = file_->data() + data_start_ + e.begin;
  return Tensor(e.dtype, e.shape, p, std::shared_ptr<const void>(file_, p));
}

Result<Checkpoint> Checkpoint::Open(const std::string& path) {
  namespace fs = std::filesystem;
  Checkpoint ckpt;
  std::vector<std::string> shard_paths;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "model.safetensors.index.json")) {
      const std::string index_path = (dir / "model.safetensors.index.json").string();
      BL_ASSIGN_OR_RETURN(std::string text, ReadTextFile(index_path));
      json index = json::parse(text, nullptr, false);
      if (index.is_discarded() || !index.is_object()) return InvalidArgument(index_path + ": not valid JSON");
      auto wm = index.find("weight_map");
      if (wm == index.end() || !wm->is_object()) return InvalidArgument(index_path + ": missing 'weight_map' object");
      std::vector<std::string> unique;
      for (auto it = wm->begin(); it != wm->end(); ++it) {
        if (!it.value().is_string()) return InvalidArgument(index_path + ": weight_map['" + it.key() + "'] is not a string");
        const std::string shard = it.value().get<std::string>();
        if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos) {
          return InvalidArgument(index_path + ": shard name '" + shard + "' must be a plain file name");
        }
        if (std::find(unique.begin(), unique.end(), shard) == unique.end()) unique.push_back(shard);
      }
      std::sort(unique.begin(), unique.end());
      for (const auto& s : unique) shard_paths.push_back((dir / s).string());
    } else if (fs::exists(dir / "model.safetensors")) {
      shard_paths.push_back((dir / "model.safetensors").string());
    } else {
      return NotFound(path + ": no model.safetensors or model.safetensors.index.json");
    }
  } else {
    shard_paths.push_back(path);
  }
  for (const auto& sp : shard_paths) {
    BL_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(sp));
    const size_t idx = ckpt.files_.size();
    for (const auto& e : file->entries()) {
      if (ckpt.where_.count(e.name)) return InvalidArgument(sp + ": tensor '" + e.name + "' also appears in another shard");
      ckpt.where_[e.name] = idx;
    }
    ckpt.files_.push_back(std::move(file));
  }
  return ckpt;
}

const TensorEntry* Checkpoint::Find(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : files_[it->second]->Find(name);
}

Result<Tensor> Checkpoint::Get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) return NotFound("tensor '" + name + "' is missing from the checkpoint");
  const auto& f = files_[it->second];
  return f->View(*f->Find(name));
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  for (const auto& [n, _] : where_) names.push_back(n);
  return names;
}

std::string Checkpoint::FileOf(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? std::string() : files_[it->second]->path();
}

// ---------------------------------------------------------------- writer

SafetensorsWriter::~SafetensorsWriter() {
  if (out_ != nullptr) {  // abandoned: remove the temporary file
    std::fclose(out_);
    std::remove((path_ + ".tmp").c_str());
  }
}

void SafetensorsWriter::Declare(const std::string& name, DType dtype, const Shape& shape) {
  TensorEntry e;
  e.name = name;
  e.dtype = dtype;
  e.shape = shape;
  e.begin = entries_.empty() ? 0 : entries_.back().end;
  e.end = e.begin + static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  entries_.push_back(std::move(e));
}

size_t SafetensorsWriter::total_bytes() const { return entries_.empty() ? 0 : entries_.back().end; }

Status SafetensorsWriter::Begin() {
  json header = json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  for (const auto& e : entries_) {
    header[e.name] = {{"dtype", std::string(DTypeName(e.dtype))}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');  // keep the data buffer 8-byte aligned
  out_ = std::fopen((path_ + ".tmp").c_str(), "wb");
  if (out_ == nullptr) return IoError(path_ + ".tmp: cannot open for writing");
  const uint64_t n = text.size();
  if (std::fwrite(&n, 8, 1, out_) != 1 || std::fwrite(text.data(), 1, text.size(), out_) != text.size()) {
    return IoError(path_ + ".tmp: write failed (disk full?)");
  }
  next_ = 0;
  return Status::Ok();
}

Status SafetensorsWriter::Write(const void* data, size_t nbytes) {
  if (out_ == nullptr) return Internal("SafetensorsWriter::Write before Begin");
  if (next_ >= entries_.size()) return Internal("SafetensorsWriter: more tensors written than declared");
  const auto& e = entries_[next_];
  if (next_written_ != 0) return Internal("SafetensorsWriter: tensor '" + e.name + "' is partly written by WritePart");
  if (nbytes != e.end - e.begin) {
    return Internal("SafetensorsWriter: tensor '" + e.name + "' declared " + std::to_string(e.end - e.begin) +
                    " bytes but got " + std::to_string(nbytes));
  }
  if (nbytes > 0 && std::fwrite(data, 1, nbytes, out_) != nbytes) return IoError(path_ + ".tmp: write failed (disk full?)");
  ++next_;
  return Status::Ok();
}

Status SafetensorsWriter::WritePart(const void* data, size_t nbytes) {
  if (out_ == nullptr) return Internal("SafetensorsWriter::WritePart before Begin");
  if (next_ >= entries_.size()) return Internal("SafetensorsWriter: more tensors written than declared");
  const auto& e = entries_[next_];
  if (nbytes > e.end - e.begin - next_written_) {
    return Internal("SafetensorsWriter: tensor '" + e.name + "' declared " + std::to_string(e.end - e.begin) +
                    " bytes but got more");
  }
  if (nbytes > 0 && std::fwrite(data, 1, nbytes, out_) != nbytes) return IoError(path_ + ".tmp: write failed (disk full?)");
  next_written_ += nbytes;
  if (next_written_ == e.end - e.begin) {
    ++next_;
    next_written_ = 0;
  }
  return Status::Ok();
}

Status SafetensorsWriter::Finish() {
  if (out_ == nullptr) return Internal("SafetensorsWriter::Finish before Begin");
  if (next_ != entries_.size()) return Internal("SafetensorsWriter: not every declared tensor was written");
  const bool ok = std::fflush(out_) == 0 && std::fclose(out_) == 0;
  out_ = nullptr;
  const std::string tmp = path_ + ".tmp";
  if (!ok) {
    std::remove(tmp.c_str());
    return IoError(tmp + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    std::remove(tmp.c_str());
    return IoError(path_ + ": cannot rename temporary file into place");
  }
  return Status::Ok();
}

Status WriteSafetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  SafetensorsWriter writer(path);
  for (const auto& [k, v] : metadata) writer.SetMetadata(k, v);
  for (const auto& [name, t] : tensors) {
    if (!t.is_contiguous()) return InvalidArgument("tensor '" + name + "' is not contiguous");
    writer.Declare(name, t.dtype(), t.shape());
  }
  BL_TRY(writer.Begin());
  for (const auto& [name, t] : tensors) BL_TRY(writer.Write(t.data(), t.nbytes()));
  return writer.Finish();
}

}  // namespace bitlens
