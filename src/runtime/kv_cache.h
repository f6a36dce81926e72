// runtime/kv_cache: the fp32 key/value cache of one generation session —
// per layer K and V [capacity, kv_heads * head_dim], one row per position,
// allocated once for the whole context. The storage is not zero-filled:
// rows are written before attention reads them, and untouched pages of a
// long context cost no resident memory.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/decoder.h"

namespace bitlens {

class KvCache {
 public:
  KvCache() = default;
  KvCache(int64_t layers, int64_t capacity, int64_t kv_dim)
      : capacity_(capacity),
        kv_dim_(kv_dim),
        floats_(static_cast<size_t>(2 * layers * capacity * kv_dim)),
        storage_(new float[floats_]) {
    layers_.resize(layers);
    for (int64_t l = 0; l < layers; ++l) {
      layers_[l].k = storage_.get() + (2 * l) * capacity * kv_dim;
      layers_[l].v = storage_.get() + (2 * l + 1) * capacity * kv_dim;
    }
  }
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;

  int64_t capacity() const { return capacity_; }  // positions
  int64_t size() const { return size_; }          // positions filled
  void set_size(int64_t n) { size_ = n; }
  void Clear() { size_ = 0; }
  size_t bytes() const { return floats_ * sizeof(float); }
  const std::vector<LayerKv>& layers() const { return layers_; }

 private:
  int64_t capacity_ = 0;
  int64_t kv_dim_ = 0;
  int64_t size_ = 0;
  size_t floats_ = 0;
  std::unique_ptr<float[]> storage_;
  std::vector<LayerKv> layers_;
};

}  // namespace bitlens
