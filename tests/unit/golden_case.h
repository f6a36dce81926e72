// Golden cases written by tests/conformance/make_model_goldens.py (HF transformers) under
// tests/golden/<case>/: loads golden.json, golden.safetensors and the model paths, and compares
// float arrays by worst absolute difference, printing where and by how much they differ.
// Header-only, for the unit tests. See docs/conformance.md for what each case holds.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "base/status.h"
#include "formats/safetensors.h"
#include "test_paths.h"

namespace bitlens::testing {

// <source>/tests/golden
inline std::string GoldenDir() { return SourceDir() + "/tests/golden"; }

// Every folder of tests/golden holding a golden.json, sorted.
inline std::vector<std::string> GoldenCaseNames() {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(GoldenDir(), ec)) {
    if (e.is_directory() && fs::exists(e.path() / "golden.json")) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

struct GoldenCase {
  std::string name;
  std::string dir;     // tests/golden/<name>
  nlohmann::json meta;  // golden.json
  Checkpoint tensors;   // golden.safetensors: input_ids, logits, greedy_ids, greedy_logits, ...

  // Checkpoint directory as transformers 5 save_pretrained wrote it (config.json + model.safetensors).
  std::string model_dir() const { return dir + "/" + meta["weights"].value("model_dir", std::string("model")); }
  // LLaVA cases: the same weights under transformers-4.x tensor names; "" for text-only cases.
  std::string model_v4_dir() const {
    const auto& w = meta["weights"];
    return w.contains("model_v4_dir") ? dir + "/" + w["model_v4_dir"].get<std::string>() : std::string();
  }
  bool is_vlm() const { return meta.contains("vlm"); }
  int64_t n_image_tokens() const { return is_vlm() ? meta["vlm"]["n_image_tokens"].get<int64_t>() : 0; }
  int64_t image_token_index() const { return is_vlm() ? meta["vlm"]["image_token_index"].get<int64_t>() : -1; }
  double tolerance() const { return meta.value("tolerance_abs", 1e-3); }

  bool Has(const std::string& tensor) const { return tensors.Has(tensor); }
  // A golden tensor; fails the calling test (ASSERT inside a void helper is not possible) by
  // returning an empty Tensor and recording a failure when it is absent.
  Tensor Get(const std::string& tensor) const {
    auto t = tensors.Get(tensor);
    if (!t.ok()) {
      ADD_FAILURE() << name << ": golden tensor '" << tensor << "': " << t.status().message();
      return Tensor();
    }
    return *t;
  }
  // I64 tensor as a vector (input_ids, greedy_ids).
  std::vector<int64_t> Ids(const std::string& tensor) const {
    Tensor t = Get(tensor);
    if (t.empty() || t.dtype() != DType::kI64) {
      if (!t.empty()) ADD_FAILURE() << name << ": golden tensor '" << tensor << "' is not I64";
      return {};
    }
    return std::vector<int64_t>(t.data_as<int64_t>(), t.data_as<int64_t>() + t.numel());
  }
  std::vector<int64_t> input_ids() const { return Ids("input_ids"); }
  std::vector<int64_t> greedy_ids() const { return Ids("greedy_ids"); }
};

// Loads tests/golden/<name>; NotFound when the case is absent, InvalidArgument when malformed.
inline Result<GoldenCase> LoadGoldenCase(const std::string& name) {
  GoldenCase c;
  c.name = name;
  c.dir = GoldenDir() + "/" + name;
  const std::string json_path = c.dir + "/golden.json";
  BL_ASSIGN_OR_RETURN(std::string text, ReadTextFile(json_path));
  c.meta = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (c.meta.is_discarded() || !c.meta.is_object()) return InvalidArgument(json_path + ": malformed JSON");
  if (!c.meta.contains("weights") || !c.meta["weights"].is_object()) {
    return InvalidArgument(json_path + ": missing object 'weights'");
  }
  BL_ASSIGN_OR_RETURN(c.tensors, Checkpoint::Open(c.dir + "/golden.safetensors"));
  return c;
}

// Worst absolute difference between two float arrays.
struct FloatDiff {
  double max_abs = 0.0;
  size_t index = 0;      // flat index of the worst element
  size_t non_finite = 0;  // elements where either side is NaN/inf and they are not equal
  float got = 0.0f, want = 0.0f;
};

inline FloatDiff CompareFloats(const float* got, const float* want, size_t n) {
  FloatDiff d;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(want[i])) {
      if (!(got[i] == want[i])) {
        if (d.non_finite++ == 0) {
          d.index = i;
          d.got = got[i];
          d.want = want[i];
          d.max_abs = INFINITY;
        }
      }
      continue;
    }
    const double e = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    if (e > d.max_abs) {
      d.max_abs = e;
      d.index = i;
      d.got = got[i];
      d.want = want[i];
    }
  }
  return d;
}

// gtest predicate: |got - want| <= tol everywhere. `row_len` > 0 reports the worst element as
// [row, col] (e.g. logits [T, vocab]). Always prints the worst difference, so a passing run
// shows how much margin there is.
inline ::testing::AssertionResult FloatsNear(const std::string& what, const float* got, const float* want,
                                             size_t n, double tol, size_t row_len = 0) {
  const FloatDiff d = CompareFloats(got, want, n);
  std::ostringstream where;
  if (row_len > 0) {
    where << "[" << d.index / row_len << ", " << d.index % row_len << "]";
  } else {
    where << "[" << d.index << "]";
  }
  std::ostringstream msg;
  msg << what << ": worst |got - want| = " << d.max_abs << " at " << where.str() << " (got " << d.got
      << ", want " << d.want << "), tolerance " << tol << ", " << n << " elements";
  if (d.non_finite) msg << ", " << d.non_finite << " non-finite mismatches";
  std::printf("%s\n", msg.str().c_str());
  if (d.non_finite == 0 && d.max_abs <= tol) return ::testing::AssertionSuccess() << msg.str();
  return ::testing::AssertionFailure() << msg.str();
}

// Same for a golden F32 tensor against computed values (shape checked by element count).
inline ::testing::AssertionResult TensorNear(const std::string& what, const std::vector<float>& got,
                                             const Tensor& want, double tol) {
  if (want.empty()) return ::testing::AssertionFailure() << what << ": golden tensor missing";
  if (want.dtype() != DType::kF32) return ::testing::AssertionFailure() << what << ": golden tensor is not F32";
  if (static_cast<int64_t>(got.size()) != want.numel()) {
    return ::testing::AssertionFailure() << what << ": got " << got.size() << " values, golden "
                                         << ShapeToString(want.shape()) << " has " << want.numel();
  }
  const size_t row_len = want.rank() >= 2 ? static_cast<size_t>(want.dim(-1)) : 0;
  return FloatsNear(what, got.data(), want.data_as<float>(), got.size(), tol, row_len);
}

}  // namespace bitlens::testing
