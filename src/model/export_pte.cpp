// model/export_pte: `bitlens export --to pte`. The model is exported as a
// .blz image, which becomes the one 4096-aligned segment every compute
// method's BitlensBackend delegate points at (so weights are stored once);
// the runner's metadata methods return constants. See docs/export.md ".pte".
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "formats/blz.h"
#include "formats/pte.h"
#include "model/export.h"
#include "model/model.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

pte::TensorSpec Float(std::vector<int32_t> sizes) { return {pte::ScalarType::kFloat, std::move(sizes)}; }
pte::TensorSpec Long(std::vector<int32_t> sizes) { return {pte::ScalarType::kLong, std::move(sizes)}; }

// The methods of ExecuTorch's multimodal (or text) runner for this model.
pte::ProgramSpec PlanProgram(const ModelConfig& config, const nlohmann::json& md, const std::string& target,
                             uint64_t blob_bytes) {
  const auto ctx = static_cast<int32_t>(md["memory_plan"]["max_context"].get<int64_t>());
  const auto hidden = static_cast<int32_t>(config.text.hidden_size);
  const auto vocab = static_cast<int32_t>(config.text.vocab_size);
  pte::ProgramSpec spec;
  spec.segments.push_back({0, blob_bytes});                                  // 0: the .blz image
  spec.segments.push_back({AlignUp(blob_bytes, pte::kSegmentAlignment), 0});  // 1: constants (none)
  spec.constant_segment = 1;
  auto compute = [&](const std::string& name, std::vector<pte::TensorSpec> in, std::vector<pte::TensorSpec> out) {
    pte::MethodSpec m;
    m.name = name;
    m.inputs = std::move(in);
    m.outputs = std::move(out);
    m.segment = 0;
    m.compile_specs = {{"method", name}, {"target", target}, {"format", "blz"}};
    spec.methods.push_back(std::move(m));
  };
  if (config.is_vlm()) {
    const auto size = static_cast<int32_t>(config.vision->image_size);
    const auto channels = static_cast<int32_t>(config.vision->num_channels);
    const auto image_tokens = static_cast<int32_t>(config.image_seq_length());
    compute("vision_encoder", {Float({1, channels, size, size})}, {Float({1, image_tokens, hidden})});
    compute("token_embedding", {Long({1, ctx})}, {Float({1, ctx, hidden})});
    compute("text_decoder", {Float({1, ctx, hidden}), Long({ctx})}, {Float({1, vocab})});
  } else {
    compute("forward", {Long({1, ctx}), Long({ctx})}, {Float({1, vocab})});
  }
  auto constant = [&](const std::string& name, std::vector<pte::Constant> values) {
    pte::MethodSpec m;
    m.name = name;
    m.constants = std::move(values);
    spec.methods.push_back(std::move(m));
  };
  constant("get_max_seq_len", {{false, ctx}});
  constant("get_max_context_len", {{false, ctx}});
  constant("get_bos_id", {{false, md["generation"]["bos_id"].get<int64_t>()}});
  std::vector<pte::Constant> eos;
  for (const auto& e : md["generation"]["eos_ids"]) eos.push_back({false, e.get<int64_t>()});
  constant("get_eos_ids", eos);
  constant("get_vocab_size", {{false, vocab}});
  constant("use_kv_cache", {{true, 1}});
  return spec;
}

Status WriteZeros(FILE* out, uint64_t n) {
  static const char zeros[4096] = {};
  while (n > 0) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(n, sizeof(zeros)));
    if (std::fwrite(zeros, 1, len, out) != len) return IoError("write failed");
    n -= len;
  }
  return Status::Ok();
}

Status WritePte(const std::string& path, const std::string& program, uint64_t base, const MappedFile& blob,
                uint64_t segment_data_size) {
  const std::string tmp = path + ".tmp";
  FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) return IoError(tmp + ": cannot create");
  Status st = Status::Ok();
  if (std::fwrite(program.data(), 1, program.size(), out) != program.size()) st = IoError(tmp + ": write failed");
  if (st.ok()) st = WriteZeros(out, base - program.size());
  if (st.ok() && std::fwrite(blob.data(), 1, blob.size(), out) != blob.size()) st = IoError(tmp + ": write failed");
  if (st.ok()) st = WriteZeros(out, segment_data_size - blob.size());
  if (std::fclose(out) != 0 && st.ok()) st = IoError(tmp + ": close failed");
  std::error_code ec;
  if (st.ok()) {
    fs::rename(tmp, path, ec);
    if (ec) st = IoError(path + ": rename failed: " + ec.message());
  }
  if (!st.ok()) fs::remove(tmp, ec);
  return st;
}

}  // namespace

Result<ExportResult> ExportPte(const ExportOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  if (o.output.empty()) return InvalidArgument("-o: an output .pte path is required");
  ExportOptions image = o;
  image.output = o.output + ".blz-image.tmp";
  struct Remove {
    std::string path;
    ~Remove() {
      std::error_code ec;
      fs::remove(path, ec);
    }
  } remove_image{image.output};
  BL_ASSIGN_OR_RETURN(ExportResult result, ExportBlz(image));

  BL_ASSIGN_OR_RETURN(auto blz, blz::BlzFile::Open(image.output));
  const std::string_view* config_text = blz->FindFile("config.json");
  if (config_text == nullptr) return Internal(image.output + ": no config.json in the image");
  BL_ASSIGN_OR_RETURN(ModelConfig config, ParseModelConfig(std::string(*config_text), o.model_dir));
  const auto md = nlohmann::json::parse(blz->contents().metadata_json, nullptr, false);
  if (md.is_discarded() || !md.contains("memory_plan") || !md.contains("generation")) {
    return Internal(image.output + ": metadata is incomplete");
  }

  const MappedFile& blob = *blz->mapping();
  pte::ProgramSpec spec = PlanProgram(config, md, result.target, blob.size());
  std::string program = pte::EncodeProgram(spec);
  const uint64_t base = AlignUp(program.size(), pte::kWeightSegmentAlignment);
  const uint64_t segment_data_size = AlignUp(blob.size(), pte::kSegmentAlignment);
  pte::SetSegmentBase(&program, base, segment_data_size);
  BL_TRY(WritePte(o.output, program, base, blob, segment_data_size));

  result.output = o.output;
  result.file_bytes = base + segment_data_size;
  for (ExportComponent& c : result.components) {
    if (c.name == "tables+padding") c.bytes += result.file_bytes - blob.size() - program.size();
  }
  result.components.push_back({"pte program", program.size(), static_cast<int64_t>(spec.methods.size())});
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace bitlens

namespace bitlens {

Result<std::unique_ptr<Model>> LoadPteModel(const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  BL_ASSIGN_OR_RETURN(std::shared_ptr<pte::PteFile> file, pte::PteFile::Open(path));
  const pte::Contents& c = file->contents();
  // The decoder method's blob carries the whole model (vision_encoder and
  // token_embedding point at the same segment).
  const pte::Method* method = c.Find("text_decoder");
  if (method == nullptr) method = c.Find("forward");
  if (method == nullptr) return InvalidArgument(path + ": no text_decoder or forward method");
  const pte::Delegate* delegate = nullptr;
  for (const pte::Delegate& d : method->delegates) {
    if (d.id == pte::kBackendId) delegate = &d;
  }
  if (delegate == nullptr || !delegate->in_segment) {
    return InvalidArgument(path + ": method '" + method->name + "' has no " + pte::kBackendId +
                           " delegate with its data in a segment");
  }
  const pte::Segment& seg = c.segments[delegate->index];  // Parse checked the index
  BL_ASSIGN_OR_RETURN(std::shared_ptr<blz::BlzFile> image, blz::BlzFile::FromMapping(file->mapping(), seg.offset, seg.size));
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadBlzModel(image));
  model->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return model;
}

}  // namespace bitlens
