#include "tensor/tensor.h"

#include <cstring>

#include "base/f16.h"

namespace bitlens {
namespace {

std::vector<int64_t> ContiguousStrides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

}  // namespace

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor::Tensor(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> storage)
    : dtype_(dtype), shape_(std::move(shape)), data_(data), storage_(std::move(storage)) {
  strides_ = ContiguousStrides(shape_);
}

Tensor Tensor::Zeros(DType dtype, Shape shape) {
  const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  auto buffer = std::make_shared<std::vector<uint8_t>>(bytes, 0);
  const void* data = buffer->data();
  return Tensor(dtype, std::move(shape), data, std::shared_ptr<const void>(buffer, buffer->data()));
}

Tensor Tensor::FromF32(Shape shape, const std::vector<float>& values) {
  Tensor t = Zeros(DType::kF32, std::move(shape));
  std::memcpy(t.mutable_data_as<float>(), values.data(), std::min(values.size(), static_cast<size_t>(t.numel())) * 4);
  return t;
}

bool Tensor::is_contiguous() const { return strides_ == ContiguousStrides(shape_); }

Tensor Tensor::Rows(int64_t begin, int64_t end) const {
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.data_ = static_cast<const uint8_t*>(data_) + begin * strides_[0] * static_cast<int64_t>(DTypeSize(dtype_));
  return t;
}

Result<Tensor> Tensor::Reshape(Shape shape) const {
  if (NumElements(shape) != numel()) {
    return InvalidArgument("cannot reshape " + ShapeToString(shape_) + " to " + ShapeToString(shape));
  }
  if (!is_contiguous()) return InvalidArgument("cannot reshape a non-contiguous tensor");
  Tensor t = *this;
  t.shape_ = std::move(shape);
  t.strides_ = ContiguousStrides(t.shape_);
  return t;
}

Tensor Tensor::ToF32() const {
  Tensor out = Zeros(DType::kF32, shape_);
  float* dst = out.mutable_data_as<float>();
  const int64_t n = numel();
  // Walk logical indices so strided views convert correctly.
  std::vector<int64_t> index(shape_.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t offset = 0;
    for (size_t d = 0; d < shape_.size(); ++d) offset += index[d] * strides_[d];
    float v = 0.f;
    switch (dtype_) {
      case DType::kF32: v = data_as<float>()[offset]; break;
      case DType::kF16: v = F16ToF32(data_as<uint16_t>()[offset]); break;
      case DType::kBF16: v = Bf16ToF32(data_as<uint16_t>()[offset]); break;
      case DType::kI8: v = data_as<int8_t>()[offset]; break;
      case DType::kU8: v = data_as<uint8_t>()[offset]; break;
      case DType::kI32: v = static_cast<float>(data_as<int32_t>()[offset]); break;
      case DType::kI64: v = static_cast<float>(data_as<int64_t>()[offset]); break;
    }
    dst[i] = v;
    for (size_t d = shape_.size(); d-- > 0;) {
      if (++index[d] < shape_[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace bitlens
