// tensor/dtype: element types of tensors that bitlens reads, writes and
// computes with, with their safetensors names and sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace bitlens {

enum class DType : uint8_t { kF32, kF16, kBF16, kI8, kU8, kI32, kI64 };

size_t DTypeSize(DType t);
std::string_view DTypeName(DType t);  // safetensors spelling: "F32", "BF16", ...
std::optional<DType> DTypeFromName(std::string_view name);

}  // namespace bitlens
