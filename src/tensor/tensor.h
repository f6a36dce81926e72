// tensor/tensor: a typed, shaped, strided view over bytes that someone else
// owns — a memory mapping, an arena, or a std::vector kept alive by `storage`.
// Views never copy; ToF32 is the one explicit conversion.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace bitlens {

using Shape = std::vector<int64_t>;

std::string ShapeToString(const Shape& shape);
int64_t NumElements(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // A contiguous view over `data`; `storage` (may be null) keeps it alive.
  Tensor(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> storage = nullptr);

  // A new contiguous tensor that owns zero-initialized memory.
  static Tensor Zeros(DType dtype, Shape shape);
  // A new f32 tensor owning a copy of `values`.
  static Tensor FromF32(Shape shape, const std::vector<float>& values);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }  // in elements
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return NumElements(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }
  bool empty() const { return data_ == nullptr; }
  bool is_contiguous() const;

  const void* data() const { return data_; }
  template <typename T>
  const T* data_as() const { return static_cast<const T*>(data_); }
  // Mutable access for tensors this process owns (Zeros/FromF32/arena views).
  template <typename T>
  T* mutable_data_as() const { return static_cast<T*>(const_cast<void*>(data_)); }
  const std::shared_ptr<const void>& storage() const { return storage_; }

  // View of rows [begin, end) along dimension 0.
  Tensor Rows(int64_t begin, int64_t end) const;
  // Same bytes, different shape (element count must match; contiguous only).
  Result<Tensor> Reshape(Shape shape) const;
  // Contiguous f32 copy of this tensor (any float dtype; integer dtypes too).
  Tensor ToF32() const;

 private:
  DType dtype_ = DType::kF32;
  Shape shape_;
  std::vector<int64_t> strides_;
  const void* data_ = nullptr;
  std::shared_ptr<const void> storage_;
};

}  // namespace bitlens
