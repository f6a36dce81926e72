// train/train_state: serialization and the hostile-input reader of the
// training state file (layout in the header).
#include "train/train_state.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

namespace bitlens::train {
namespace {

using json = nlohmann::json;

constexpr char kMagic[8] = {'B', 'L', 'T', 'S', 'T', 'A', 'T', 'E'};
constexpr size_t kHeaderBytes = 32;
constexpr size_t kEntryBytes = 32;
// Bounds that keep a hostile file from asking for absurd allocations.
constexpr int64_t kMaxTensors = 1 << 20;
constexpr int64_t kMaxRank = 8;

const std::array<uint32_t, 256>& CrcTable() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}
void PutU64(std::string* out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out->append(b, 8);
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::string FloatBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

struct Payload {
  TrainStateSection kind;
  std::string bytes;
};

std::string MetaJson(const TrainState& s) {
  json tensors = json::array();
  for (const auto& t : s.tensors) tensors.push_back({{"name", t.name}, {"shape", t.shape}});
  return json({{"step", s.step},
               {"optimizer_step", s.optimizer_step},
               {"seconds", s.seconds},
               {"tokens", s.tokens},
               {"tensors", tensors}})
      .dump();
}

Status Bad(const std::string& source, const std::string& what) { return InvalidArgument(source + ": " + what); }

Result<int64_t> NonNegativeInt(const json& meta, const char* key, const std::string& source) {
  auto it = meta.find(key);
  if (it == meta.end()) return Bad(source, std::string("meta: missing '") + key + "'");
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX) ||
      it->get<int64_t>() < 0) {
    return Bad(source, std::string("meta: '") + key + "' is not a non-negative integer");
  }
  return it->get<int64_t>();
}

Status ParseMeta(const std::string& text, const std::string& source, TrainState* s) {
  const json meta = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded() || !meta.is_object()) return Bad(source, "meta section is not a JSON object");
  BL_ASSIGN_OR_RETURN(s->step, NonNegativeInt(meta, "step", source));
  BL_ASSIGN_OR_RETURN(s->optimizer_step, NonNegativeInt(meta, "optimizer_step", source));
  BL_ASSIGN_OR_RETURN(s->tokens, NonNegativeInt(meta, "tokens", source));
  auto sec = meta.find("seconds");
  if (sec == meta.end() || !sec->is_number() || !(sec->get<double>() >= 0)) {
    return Bad(source, "meta: 'seconds' is not a non-negative number");
  }
  s->seconds = sec->get<double>();
  auto tensors = meta.find("tensors");
  if (tensors == meta.end() || !tensors->is_array()) return Bad(source, "meta: 'tensors' is not an array");
  if (static_cast<int64_t>(tensors->size()) > kMaxTensors) return Bad(source, "meta: too many tensors");
  int64_t total = 0;
  for (const json& t : *tensors) {
    if (!t.is_object()) return Bad(source, "meta: a tensor entry is not an object");
    auto name = t.find("name");
    auto shape = t.find("shape");
    if (name == t.end() || !name->is_string()) return Bad(source, "meta: a tensor has no string 'name'");
    if (shape == t.end() || !shape->is_array() || static_cast<int64_t>(shape->size()) > kMaxRank) {
      return Bad(source, "meta: tensor '" + name->get<std::string>() + "' has no valid 'shape'");
    }
    TrainStateTensor entry;
    entry.name = name->get<std::string>();
    int64_t numel = 1;
    for (const json& d : *shape) {
      if (!d.is_number_integer() || (d.is_number_unsigned() && d.get<uint64_t>() > INT64_MAX) || d.get<int64_t>() < 0) {
        return Bad(source, "meta: tensor '" + entry.name + "' has a negative or non-integer dimension");
      }
      const int64_t dim = d.get<int64_t>();
      if (dim != 0 && numel > std::numeric_limits<int64_t>::max() / 4 / dim) {
        return Bad(source, "meta: tensor '" + entry.name + "' is impossibly large");
      }
      numel *= dim;
      entry.shape.push_back(dim);
    }
    if (total > std::numeric_limits<int64_t>::max() / 4 - numel) return Bad(source, "meta: tensors are impossibly large");
    total += numel;
    s->tensors.push_back(std::move(entry));
  }
  return Status::Ok();
}

const char* SectionName(TrainStateSection kind) {
  switch (kind) {
    case TrainStateSection::kMeta: return "meta";
    case TrainStateSection::kRecipe: return "recipe";
    case TrainStateSection::kTokenizer: return "tokenizer";
    case TrainStateSection::kLog: return "log";
    case TrainStateSection::kValues: return "values";
    case TrainStateSection::kAdamM: return "adam_m";
    case TrainStateSection::kAdamV: return "adam_v";
  }
  return "?";
}

}  // namespace

int64_t TrainState::NumElements() const {
  int64_t n = 0;
  for (const auto& t : tensors) {
    int64_t e = 1;
    for (int64_t d : t.shape) e *= d;
    n += e;
  }
  return n;
}

uint32_t Crc32(const uint8_t* data, size_t size, uint32_t crc) {
  const auto& table = CrcTable();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

std::string SerializeTrainState(const TrainState& s) {
  std::vector<Payload> payloads = {
      {TrainStateSection::kMeta, MetaJson(s)},
      {TrainStateSection::kRecipe, s.recipe_json},
      {TrainStateSection::kTokenizer, s.tokenizer_json},
      {TrainStateSection::kLog, s.log_jsonl},
      {TrainStateSection::kValues, FloatBytes(s.values)},
      {TrainStateSection::kAdamM, FloatBytes(s.adam_m)},
      {TrainStateSection::kAdamV, FloatBytes(s.adam_v)},
  };
  uint64_t offset = kHeaderBytes + kEntryBytes * payloads.size();
  std::string table;
  for (const Payload& p : payloads) {
    PutU32(&table, static_cast<uint32_t>(p.kind));
    PutU32(&table, 0);
    PutU64(&table, offset);
    PutU64(&table, p.bytes.size());
    PutU32(&table, Crc32(reinterpret_cast<const uint8_t*>(p.bytes.data()), p.bytes.size()));
    PutU32(&table, 0);
    offset += p.bytes.size();
  }
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, kTrainStateVersion);
  PutU32(&out, static_cast<uint32_t>(payloads.size()));
  PutU64(&out, offset);
  PutU32(&out, Crc32(reinterpret_cast<const uint8_t*>(table.data()), table.size()));
  PutU32(&out, 0);
  out += table;
  for (const Payload& p : payloads) out += p.bytes;
  return out;
}

Status WriteTrainState(const TrainState& state, const std::string& path) {
  const std::string bytes = SerializeTrainState(state);
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return IoError(tmp + ": cannot open for writing");
  const bool wrote = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool flushed = std::fflush(f) == 0;
  if (std::fclose(f) != 0 || !wrote || !flushed) {
    std::remove(tmp.c_str());
    return IoError(tmp + ": write failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return IoError(path + ": cannot rename the new state into place (" + ec.message() + ")");
  return Status::Ok();
}

Result<TrainState> ParseTrainState(const uint8_t* data, size_t size, const std::string& source) {
  if (size < kHeaderBytes) {
    return Bad(source, "is " + std::to_string(size) + " bytes, shorter than the 32-byte header (truncated?)");
  }
  if (std::memcmp(data, kMagic, sizeof(kMagic)) != 0) return Bad(source, "not a bitlens train state (wrong magic)");
  const uint32_t version = GetU32(data + 8);
  if (version == 0) return Bad(source, "version 0 is not a valid train state version");
  if (version > kTrainStateVersion) {
    return Unsupported(source + ": train state version " + std::to_string(version) + " is newer than this bitlens (" +
                       std::to_string(kTrainStateVersion) + "); update bitlens to resume it");
  }
  const uint32_t count = GetU32(data + 12);
  const uint64_t file_bytes = GetU64(data + 16);
  if (file_bytes != size) {
    return Bad(source, "header says " + std::to_string(file_bytes) + " bytes but the file has " + std::to_string(size) +
                           (size < file_bytes ? " (truncated?)" : ""));
  }
  if (count == 0 || count > kMaxSections) return Bad(source, "section count " + std::to_string(count) + " is invalid");
  const size_t table_bytes = kEntryBytes * count;
  if (table_bytes > size - kHeaderBytes) return Bad(source, "section table runs past the end of the file");
  const uint8_t* table = data + kHeaderBytes;
  if (Crc32(table, table_bytes) != GetU32(data + 24)) return Bad(source, "section table checksum mismatch (corrupted)");

  TrainState s;
  const std::string* found[8] = {};
  std::string texts[8];
  std::vector<float>* floats[8] = {};
  floats[5] = &s.values;
  floats[6] = &s.adam_m;
  floats[7] = &s.adam_v;
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = table + kEntryBytes * i;
    const uint32_t kind = GetU32(e);
    const uint64_t offset = GetU64(e + 8);
    const uint64_t bytes = GetU64(e + 16);
    if (offset < kHeaderBytes + table_bytes || offset > size || bytes > size - offset) {
      return Bad(source, "section " + std::to_string(i) + " (offset " + std::to_string(offset) + ", " +
                             std::to_string(bytes) + " bytes) lies outside the file");
    }
    if (Crc32(data + offset, bytes) != GetU32(e + 24)) {
      return Bad(source, "section " + std::to_string(i) + " checksum mismatch (corrupted)");
    }
    if (kind < 1 || kind > 7) continue;  // appended by a later version: not ours to read
    const char* name = SectionName(static_cast<TrainStateSection>(kind));
    if (found[kind] != nullptr) return Bad(source, std::string("section '") + name + "' appears twice");
    texts[kind].assign(reinterpret_cast<const char*>(data + offset), bytes);
    found[kind] = &texts[kind];
  }
  for (uint32_t kind = 1; kind <= 7; ++kind) {
    if (found[kind] == nullptr) {
      return Bad(source, std::string("section '") + SectionName(static_cast<TrainStateSection>(kind)) + "' is missing");
    }
  }
  BL_TRY(ParseMeta(texts[1], source, &s));
  s.recipe_json = std::move(texts[2]);
  s.tokenizer_json = std::move(texts[3]);
  s.log_jsonl = std::move(texts[4]);
  const uint64_t want = static_cast<uint64_t>(s.NumElements()) * sizeof(float);
  for (uint32_t kind = 5; kind <= 7; ++kind) {
    const std::string& b = texts[kind];
    if (b.size() != want) {
      return Bad(source, std::string("section '") + SectionName(static_cast<TrainStateSection>(kind)) + "' has " +
                             std::to_string(b.size()) + " bytes but the tensors need " + std::to_string(want));
    }
    floats[kind]->resize(b.size() / sizeof(float));
    if (!b.empty()) std::memcpy(floats[kind]->data(), b.data(), b.size());
  }
  return s;
}

Result<TrainState> ReadTrainState(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": no train state to resume from");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return IoError(path + ": read failed");
  return ParseTrainState(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

}  // namespace bitlens::train
