// formats/llama2c: llama2.c -> Hugging Face Llama. The checkpoint is mapped,
// validated to the byte, and streamed into model.safetensors.
#include "formats/llama2c.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "formats/safetensors.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

constexpr int32_t kVersionMagic = 0x616b3432;  // "ak42": llama2.c export versions 1 and 2
constexpr int32_t kMaxDim = 1 << 16, kMaxLayers = 4096, kMaxVocab = 1 << 22, kMaxSeq = 1 << 22;

std::string BaseName(const std::string& path) { return fs::path(path).filename().string(); }

int32_t ReadI32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// HF's convert_llama_weights_to_hf permute: within each head, row 2i + j of
// llama2.c (pair i, element j) becomes row j * head_dim/2 + i.
void PermuteRotaryRows(const float* src, int64_t heads, int64_t head_dim, int64_t cols, float* dst) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const float* from = src + (h * head_dim + 2 * i + j) * cols;
        std::copy(from, from + cols, dst + (h * head_dim + j * half + i) * cols);
      }
    }
  }
}

Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return IoError(path.string() + ": write failed");
  return Status::Ok();
}

std::string SpecialName(const std::string& piece) {
  if (piece == "<unk>" || piece == "<s>" || piece == "</s>") return piece;
  return "";
}

ojson AddedToken(int32_t id, const std::string& content) {
  return ojson{{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
               {"rstrip", false},   {"normalized", false}, {"special", true}};
}

// tokenizer.json as transformers' LlamaConverter writes it for a
// SentencePiece BPE model with byte fallback.
std::string TokenizerJson(const Llama2cVocab& vocab) {
  ojson added = ojson::array();
  for (size_t i = 0; i < vocab.pieces.size(); ++i) {
    if (!SpecialName(vocab.pieces[i]).empty()) added.push_back(AddedToken(static_cast<int32_t>(i), vocab.pieces[i]));
  }
  const std::string sp = "\xe2\x96\x81";  // U+2581
  ojson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers",
                      ojson::array({ojson{{"type", "Prepend"}, {"prepend", sp}},
                                    ojson{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}})}};
  j["pre_tokenizer"] = nullptr;
  const ojson bos = {{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}};
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", ojson::array({bos, ojson{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", ojson::array({bos, ojson{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                             ojson{{"SpecialToken", {{"id", "<s>"}, {"type_id", 1}}}},
                             ojson{{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", ojson::array({1})}, {"tokens", ojson::array({"<s>"})}}}}}};
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", ojson::array({ojson{{"type", "Replace"}, {"pattern", {{"String", sp}}}, {"content", " "}},
                                             ojson{{"type", "ByteFallback"}}, ojson{{"type", "Fuse"}},
                                             ojson{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  ojson vocab_map = ojson::object();
  for (size_t i = 0; i < vocab.pieces.size(); ++i) vocab_map[vocab.pieces[i]] = static_cast<int32_t>(i);
  ojson merges = ojson::array();
  for (const auto& [l, r] : SentencePieceMerges(vocab)) merges.push_back(ojson::array({l, r}));
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", "<unk>"},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", true},
                {"byte_fallback", true},
                {"ignore_merges", false},
                {"vocab", vocab_map},
                {"merges", merges}};
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string TokenizerConfigJson(const Llama2cVocab& vocab, int32_t seq_len) {
  ojson decoder = ojson::object();
  for (size_t i = 0; i < vocab.pieces.size(); ++i) {
    if (SpecialName(vocab.pieces[i]).empty()) continue;
    decoder[std::to_string(i)] = {{"content", vocab.pieces[i]}, {"lstrip", false},  {"normalized", false},
                                  {"rstrip", false},            {"single_word", false}, {"special", true}};
  }
  ojson j = {{"add_bos_token", true},
             {"add_eos_token", false},
             {"added_tokens_decoder", decoder},
             {"bos_token", "<s>"},
             {"clean_up_tokenization_spaces", false},
             {"eos_token", "</s>"},
             {"legacy", true},
             {"model_max_length", seq_len},
             {"pad_token", nullptr},
             {"sp_model_kwargs", ojson::object()},
             {"tokenizer_class", "LlamaTokenizer"},
             {"unk_token", "<unk>"}};
  return j.dump(2);
}

std::string ConfigJson(const Llama2cConfig& c) {
  ojson j = {{"architectures", ojson::array({"LlamaForCausalLM"})},
             {"attention_bias", false},
             {"bos_token_id", 1},
             {"eos_token_id", 2},
             {"head_dim", c.head_size()},
             {"hidden_act", "silu"},
             {"hidden_size", c.dim},
             {"intermediate_size", c.hidden_dim},
             {"max_position_embeddings", c.seq_len},
             {"mlp_bias", false},
             {"model_type", "llama"},
             {"num_attention_heads", c.n_heads},
             {"num_hidden_layers", c.n_layers},
             {"num_key_value_heads", c.n_kv_heads},
             {"rms_norm_eps", 1e-5},  // llama2.c's rmsnorm
             {"rope_theta", 10000.0},
             {"tie_word_embeddings", c.shared_classifier},
             {"torch_dtype", "float32"},
             {"vocab_size", c.vocab_size}};
  return j.dump(2);
}

Status WriteWeights(const Llama2cConfig& c, const float* w, const fs::path& path) {
  const int64_t dim = c.dim, hidden = c.hidden_dim, L = c.n_layers, vocab = c.vocab_size, kv = c.kv_dim();
  const int64_t hs = c.head_size();
  // Offsets (in floats) of llama2.c's arrays, in file order.
  const float* emb = w;
  const float* rms_att = emb + vocab * dim;
  const float* wq = rms_att + L * dim;
  const float* wk = wq + L * dim * dim;
  const float* wv = wk + L * kv * dim;
  const float* wo = wv + L * kv * dim;
  const float* rms_ffn = wo + L * dim * dim;
  const float* w1 = rms_ffn + L * dim;
  const float* w2 = w1 + L * hidden * dim;
  const float* w3 = w2 + L * dim * hidden;
  const float* rms_final = w3 + L * hidden * dim;
  const float* wcls = rms_final + dim + 2 * static_cast<int64_t>(c.seq_len) * (hs / 2);

  struct Item {
    std::string name;
    Shape shape;
    const float* data;
    int64_t permute_heads;  // > 0: permute rotary rows
  };
  std::vector<Item> items;
  items.push_back({"model.embed_tokens.weight", {vocab, dim}, emb, 0});
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    items.push_back({p + "input_layernorm.weight", {dim}, rms_att + l * dim, 0});
    items.push_back({p + "self_attn.q_proj.weight", {dim, dim}, wq + l * dim * dim, c.n_heads});
    items.push_back({p + "self_attn.k_proj.weight", {kv, dim}, wk + l * kv * dim, c.n_kv_heads});
    items.push_back({p + "self_attn.v_proj.weight", {kv, dim}, wv + l * kv * dim, 0});
    items.push_back({p + "self_attn.o_proj.weight", {dim, dim}, wo + l * dim * dim, 0});
    items.push_back({p + "post_attention_layernorm.weight", {dim}, rms_ffn + l * dim, 0});
    items.push_back({p + "mlp.gate_proj.weight", {hidden, dim}, w1 + l * hidden * dim, 0});
    items.push_back({p + "mlp.down_proj.weight", {dim, hidden}, w2 + l * dim * hidden, 0});
    items.push_back({p + "mlp.up_proj.weight", {hidden, dim}, w3 + l * hidden * dim, 0});
  }
  items.push_back({"model.norm.weight", {dim}, rms_final, 0});
  if (!c.shared_classifier) items.push_back({"lm_head.weight", {vocab, dim}, wcls, 0});

  SafetensorsWriter writer(path.string());
  writer.SetMetadata("format", "pt");
  writer.SetMetadata("source", "llama2.c");
  for (const Item& it : items) writer.Declare(it.name, DType::kF32, it.shape);
  BL_TRY(writer.Begin());
  std::vector<float> permuted;
  for (const Item& it : items) {
    const int64_t n = NumElements(it.shape);
    const float* data = it.data;
    if (it.permute_heads > 0) {
      permuted.resize(n);
      PermuteRotaryRows(it.data, it.permute_heads, hs, dim, permuted.data());
      data = permuted.data();
    }
    BL_TRY(writer.Write(data, static_cast<size_t>(n) * sizeof(float)));
  }
  return writer.Finish();
}

}  // namespace

int64_t Llama2cConfig::ExpectedBytes() const {
  const int64_t L = n_layers, d = dim, h = hidden_dim, v = vocab_size, kv = kv_dim();
  int64_t floats = v * d                         // token embedding
                   + L * d * 2                   // rms_att, rms_ffn
                   + L * d * d * 2 + L * kv * d * 2  // wq, wo, wk, wv
                   + L * h * d * 3               // w1, w2, w3
                   + d                           // rms_final
                   + static_cast<int64_t>(seq_len) * (head_size() / 2) * 2;  // freq_cis real, imag
  if (!shared_classifier) floats += v * d;
  return 28 + floats * 4;
}

Result<Llama2cConfig> ParseLlama2cHeader(const uint8_t* data, size_t size, const std::string& source) {
  const std::string where = BaseName(source) + ": ";
  if (size < 28) return InvalidArgument(where + "too small for a llama2.c header (" + std::to_string(size) + " bytes)");
  if (ReadI32(data) == kVersionMagic) {
    return Unsupported(where + "llama2.c export version 1/2 files are not supported; export with --version 0 (legacy)");
  }
  Llama2cConfig c;
  c.dim = ReadI32(data);
  c.hidden_dim = ReadI32(data + 4);
  c.n_layers = ReadI32(data + 8);
  c.n_heads = ReadI32(data + 12);
  c.n_kv_heads = ReadI32(data + 16);
  const int32_t vocab = ReadI32(data + 20);
  c.seq_len = ReadI32(data + 24);
  c.shared_classifier = vocab > 0;
  c.vocab_size = vocab == INT32_MIN ? 0 : std::abs(vocab);
  auto bad = [&](const std::string& what) {
    return InvalidArgument(where + "not a llama2.c checkpoint: " + what + " (header dim=" + std::to_string(c.dim) +
                           " hidden_dim=" + std::to_string(c.hidden_dim) + " n_layers=" + std::to_string(c.n_layers) +
                           " n_heads=" + std::to_string(c.n_heads) + " n_kv_heads=" + std::to_string(c.n_kv_heads) +
                           " vocab_size=" + std::to_string(vocab) + " seq_len=" + std::to_string(c.seq_len) + ")");
  };
  if (c.dim <= 0 || c.dim > kMaxDim || c.hidden_dim <= 0 || c.hidden_dim > 4 * kMaxDim) return bad("dim/hidden_dim out of range");
  if (c.n_layers <= 0 || c.n_layers > kMaxLayers) return bad("n_layers out of range");
  if (c.n_heads <= 0 || c.n_kv_heads <= 0 || c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0) {
    return bad("n_heads must divide dim and n_kv_heads must divide n_heads");
  }
  if (c.head_size() % 2 != 0) return bad("head size must be even");
  if (c.vocab_size <= 0 || c.vocab_size > kMaxVocab || c.seq_len <= 0 || c.seq_len > kMaxSeq) {
    return bad("vocab_size/seq_len out of range");
  }
  const int64_t expected = c.ExpectedBytes();
  if (static_cast<int64_t>(size) != expected) {
    return InvalidArgument(where + "the header (dim " + std::to_string(c.dim) + ", " + std::to_string(c.n_layers) +
                           " layers, vocab " + std::to_string(c.vocab_size) + ", " +
                           (c.shared_classifier ? "shared" : "separate") + " classifier) implies " +
                           std::to_string(expected) + " bytes but the file has " + std::to_string(size) +
                           (static_cast<int64_t>(size) < expected ? " (truncated?)" : ""));
  }
  return c;
}

Result<Llama2cVocab> ReadLlama2cTokenizer(const std::string& path, int32_t vocab_size) {
  BL_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  const std::string where = BaseName(path) + ": ";
  const uint8_t* p = file->data();
  const size_t size = file->size();
  if (size < 4) return InvalidArgument(where + "too small for a llama2.c tokenizer");
  Llama2cVocab v;
  v.max_token_length = ReadI32(p);
  if (v.max_token_length <= 0 || v.max_token_length > (1 << 16)) {
    return InvalidArgument(where + "max_token_length " + std::to_string(v.max_token_length) + " is out of range");
  }
  size_t off = 4;
  v.pieces.reserve(vocab_size);
  v.scores.reserve(vocab_size);
  for (int32_t i = 0; i < vocab_size; ++i) {
    if (size - off < 8) {
      return InvalidArgument(where + "ends inside token " + std::to_string(i) + " of " + std::to_string(vocab_size) +
                             " (wrong tokenizer for this checkpoint?)");
    }
    float score;
    std::memcpy(&score, p + off, 4);
    const int32_t len = ReadI32(p + off + 4);
    off += 8;
    if (len < 0 || len > v.max_token_length || static_cast<size_t>(len) > size - off) {
      return InvalidArgument(where + "token " + std::to_string(i) + " has length " + std::to_string(len) +
                             " (max_token_length " + std::to_string(v.max_token_length) + ", " +
                             std::to_string(size - off) + " bytes left)");
    }
    std::string piece(reinterpret_cast<const char*>(p + off), len);
    off += len;
    // Undo the export's spelling: BOS/EOS with newlines, U+2581 as a space.
    if (piece == "\n<s>\n") piece = "<s>";
    else if (piece == "\n</s>\n") piece = "</s>";
    std::string restored;
    for (char ch : piece) {
      if (ch == ' ') restored += "\xe2\x96\x81";
      else restored += ch;
    }
    v.pieces.push_back(std::move(restored));
    v.scores.push_back(score);
  }
  if (off != size) {
    return InvalidArgument(where + std::to_string(size - off) + " bytes remain after " + std::to_string(vocab_size) +
                           " tokens (wrong tokenizer for this checkpoint?)");
  }
  return v;
}

std::vector<std::pair<std::string, std::string>> SentencePieceMerges(const Llama2cVocab& vocab) {
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < vocab.pieces.size(); ++i) ids.emplace(vocab.pieces[i], static_cast<int32_t>(i));
  struct Merge {
    int32_t left, right, merged;
    size_t left_len, right_len;
  };
  std::vector<Merge> merges;
  for (size_t m = 0; m < vocab.pieces.size(); ++m) {
    const std::string& piece = vocab.pieces[m];
    if (!SpecialName(piece).empty()) continue;
    const size_t start = merges.size();
    for (size_t cut = 1; cut < piece.size(); ++cut) {
      // Split only between UTF-8 characters.
      if ((static_cast<uint8_t>(piece[cut]) & 0xC0) == 0x80) continue;
      auto l = ids.find(piece.substr(0, cut));
      auto r = ids.find(piece.substr(cut));
      if (l != ids.end() && r != ids.end()) {
        merges.push_back({l->second, r->second, static_cast<int32_t>(m), cut, piece.size() - cut});
      }
    }
    std::sort(merges.begin() + start, merges.end(), [](const Merge& a, const Merge& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
  }
  // Highest merged score first; stable so that ties keep vocabulary order.
  std::stable_sort(merges.begin(), merges.end(), [&](const Merge& a, const Merge& b) {
    return vocab.scores[a.merged] > vocab.scores[b.merged];
  });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const Merge& m : merges) out.emplace_back(vocab.pieces[m.left], vocab.pieces[m.right]);
  return out;
}

Status ConvertLlama2c(const std::string& checkpoint_path, const std::string& tokenizer_path, const std::string& out_dir) {
  BL_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(checkpoint_path));
  BL_ASSIGN_OR_RETURN(Llama2cConfig config, ParseLlama2cHeader(file->data(), file->size(), checkpoint_path));
  BL_ASSIGN_OR_RETURN(Llama2cVocab vocab, ReadLlama2cTokenizer(tokenizer_path, config.vocab_size));
  for (const char* special : {"<unk>", "<s>", "</s>"}) {
    const size_t id = std::string(special) == "<unk>" ? 0 : std::string(special) == "<s>" ? 1 : 2;
    if (vocab.pieces[id] != special) {
      return InvalidArgument(BaseName(tokenizer_path) + ": token " + std::to_string(id) + " is '" + vocab.pieces[id] +
                             "' but llama2.c tokenizers put " + special + " there");
    }
  }

  std::error_code ec;
  const fs::path out(out_dir);
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec) || !fs::is_empty(out, ec)) {
      return InvalidArgument(out_dir + " already exists; remove it or choose another -o");
    }
    fs::remove(out, ec);
  }
  const fs::path tmp = out.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  if (!fs::create_directories(tmp, ec)) return IoError(tmp.string() + ": cannot create directory: " + ec.message());
  auto write_all = [&]() -> Status {
    BL_TRY(WriteWeights(config, reinterpret_cast<const float*>(file->data() + 28), tmp / "model.safetensors"));
    BL_TRY(WriteText(tmp / "config.json", ConfigJson(config) + "\n"));
    BL_TRY(WriteText(tmp / "generation_config.json",
                     ojson{{"bos_token_id", 1}, {"eos_token_id", 2}, {"_from_model_config", true}}.dump(2) + "\n"));
    BL_TRY(WriteText(tmp / "tokenizer.json", TokenizerJson(vocab) + "\n"));
    BL_TRY(WriteText(tmp / "tokenizer_config.json", TokenizerConfigJson(vocab, config.seq_len) + "\n"));
    fs::rename(tmp, out, ec);
    if (ec) return IoError(out_dir + ": cannot move the converted checkpoint into place: " + ec.message());
    return Status::Ok();
  };
  Status s = write_all();
  if (!s.ok()) fs::remove_all(tmp, ec);
  return s;
}

}  // namespace bitlens
