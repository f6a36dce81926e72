// model/export_load: a Model from a .blz file. The tensor table becomes a
// Checkpoint over the mapping (the seam every weight binder already reads),
// so the decoder and vision tower bind the same views as from safetensors.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/blz.h"
#include "model/export.h"
#include "model/model.h"
#include "quant/checkpoint.h"
#include "quant/formats.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

// The side files Tokenizer::Load reads from its directory.
constexpr const char* kTokenizerFiles[] = {
    "tokenizer.json",          "tokenizer.model",   "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json",       "vocab.json",        "merges.txt",            "config.json",
    "generation_config.json",
};

// A private directory removed when it goes out of scope.
struct TempDir {
  std::string path;
  ~TempDir() {
    if (!path.empty()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

// The tokenizer reader works on a folder of files; the embedded tokenizer
// files (a few MB at most) are handed to it through a private directory.
Status WriteTokenizerFiles(const blz::BlzFile& file, TempDir* dir) {
  std::string templ = (fs::temp_directory_path() / "bitlens-blz-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) return IoError(templ + ": cannot create a temporary directory");
  dir->path = templ;
  for (const char* name : kTokenizerFiles) {
    const std::string_view* bytes = file.FindFile(name);
    if (bytes == nullptr) continue;
    std::ofstream out(fs::path(templ) / name, std::ios::binary);
    out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    if (!out) return IoError(templ + "/" + name + ": write failed");
  }
  return Status::Ok();
}

bool HasTokenizer(const blz::BlzFile& file) {
  return file.FindFile("tokenizer.json") || file.FindFile("tokenizer.model") ||
         (file.FindFile("vocab.json") && file.FindFile("merges.txt"));
}

}  // namespace

Result<std::unique_ptr<Model>> LoadBlzModel(const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  BL_ASSIGN_OR_RETURN(std::shared_ptr<blz::BlzFile> file, blz::BlzFile::Open(path));
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadBlzModel(file));
  model->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return model;
}

Result<std::unique_ptr<Model>> LoadBlzModel(const std::shared_ptr<blz::BlzFile>& file) {
  const auto start = std::chrono::steady_clock::now();
  const std::string path = file->path();
  BL_TRY(file->CheckTargetRunsHere());
  const blz::Contents& c = file->contents();
  const nlohmann::json md = nlohmann::json::parse(c.metadata_json, nullptr, /*allow_exceptions=*/false);
  if (md.is_discarded() || !md.is_object()) return InvalidArgument(path + ": metadata.json is not a JSON object");

  const std::string prefix = path + ": ";
  const std::string_view* config_text = file->FindFile("config.json");
  if (config_text == nullptr) return InvalidArgument(prefix + "no embedded config.json");
  const std::string config_json(*config_text);
  auto model = std::make_unique<Model>();
  model->dir = path;
  BL_ASSIGN_OR_RETURN(model->config, ParseModelConfig(config_json, prefix + "config.json"));
  BL_ASSIGN_OR_RETURN(model->quantization, quant::ParseQuantizationConfig(config_json, prefix + "config.json"));

  // The tensor table as checkpoint entries: a packed tensor must be listed by
  // quantization_config with the same format and logical shape, and hold
  // exactly n rows of RowBytes(format, k).
  std::vector<TensorEntry> entries;
  entries.reserve(c.tensors.size());
  for (const blz::TensorRecord& r : c.tensors) {
    const std::string where = prefix + "tensor '" + r.name + "'";
    TensorEntry e;
    e.name = r.name;
    e.begin = r.offset;
    e.end = r.offset + r.nbytes;
    const quant::QuantizedTensor* q = model->quantization.Find(r.name);
    if (r.packed) {
      if (q == nullptr) return InvalidArgument(where + " is packed (" + r.type + ") but quantization_config omits it");
      if (r.type != q->format->name || r.shape[0] != q->n || r.shape[1] != q->k) {
        return InvalidArgument(where + " is " + r.type + " " + ShapeToString(r.shape) + " but quantization_config says " +
                               q->format->name + " [" + std::to_string(q->n) + ", " + std::to_string(q->k) + "]");
      }
      const uint64_t row = q->row_bytes();
      if (static_cast<uint64_t>(q->n) * row != r.nbytes) {
        return InvalidArgument(where + ": " + r.type + " " + ShapeToString(r.shape) + " packs to " +
                               std::to_string(static_cast<uint64_t>(q->n) * row) + " bytes but the table gives " +
                               std::to_string(r.nbytes));
      }
      e.dtype = DType::kU8;
      e.shape = {q->n, static_cast<int64_t>(row)};
    } else {
      if (q != nullptr) return InvalidArgument(where + " is " + r.type + " but quantization_config lists it as packed");
      e.dtype = *DTypeFromName(r.type);  // Parse checked the name
      e.shape = r.shape;
    }
    entries.push_back(std::move(e));
  }
  BL_ASSIGN_OR_RETURN(model->checkpoint,
                      Checkpoint::FromFiles({SafetensorsFile::FromMapping(file->mapping(), file->image_offset(), std::move(entries))}));
  BL_TRY(quant::CheckQuantizedTensorsPresent(model->checkpoint, model->quantization));

  TempDir tokenizer_dir;
  if (HasTokenizer(*file)) BL_TRY(WriteTokenizerFiles(*file, &tokenizer_dir));
  std::optional<std::string> generation, preprocessor;
  if (const auto* g = file->FindFile("generation_config.json")) generation = std::string(*g);
  if (const auto* p = file->FindFile("preprocessor_config.json")) preprocessor = std::string(*p);
  Status bound = BindModel(model.get(), tokenizer_dir.path, generation ? &*generation : nullptr,
                           preprocessor ? &*preprocessor : nullptr, prefix);
  if (!bound.ok()) {
    // Messages from the tokenizer name the private directory; name the file.
    std::string m = bound.message();
    if (!tokenizer_dir.path.empty()) {
      for (size_t at; (at = m.find(tokenizer_dir.path)) != std::string::npos;) m.replace(at, tokenizer_dir.path.size(), path + ":");
    }
    return Status(bound.code(), m);
  }
  model->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return model;
}

uint64_t ResidentBytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace bitlens
