// formats/pte_writer: encodes the ExecuTorch Program tables with the
// FlatBuffers builder (no generated code: slots are 4 + 2 * field id, as in
// pte_program.fbs) and inserts the eh00 extended header.
#include <cstring>

#include <flatbuffers/flatbuffers.h>

#include "formats/pte.h"

namespace bitlens::pte {
namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;
using flatbuffers::uoffset_t;
using flatbuffers::voffset_t;
using Table = flatbuffers::Offset<void>;

constexpr voffset_t Slot(int id) { return static_cast<voffset_t>(4 + 2 * id); }

// Union type ids (KernelTypes and InstructionArguments).
constexpr uint8_t kValInt = 2, kValBool = 3, kValTensor = 5;
constexpr uint8_t kInstrDelegateCall = 2;
constexpr int8_t kDynamicBound = 1;
constexpr int8_t kLocationSegment = 1;

Table Finish(FlatBufferBuilder& b, uoffset_t start) { return Table(b.EndTable(start)); }

Table TensorValue(FlatBufferBuilder& b, const TensorSpec& t) {
  auto sizes = b.CreateVector(t.sizes);
  std::vector<uint8_t> order(t.sizes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint8_t>(i);
  auto dim_order = b.CreateVector(order);
  auto s = b.StartTable();
  b.AddElement<int8_t>(Slot(0), static_cast<int8_t>(t.scalar_type), 0);
  b.AddOffset(Slot(2), sizes);
  b.AddOffset(Slot(3), dim_order);
  b.AddElement<int8_t>(Slot(8), kDynamicBound, 0);
  return Finish(b, s);
}

Table ConstantValue(FlatBufferBuilder& b, const Constant& c) {
  auto s = b.StartTable();
  if (c.is_bool) b.AddElement<uint8_t>(Slot(0), c.value ? 1 : 0, 0);
  else b.AddElement<int64_t>(Slot(0), c.value, 0);
  return Finish(b, s);
}

Table EValue(FlatBufferBuilder& b, uint8_t type, Table val) {
  auto s = b.StartTable();
  b.AddElement<uint8_t>(Slot(0), type, 0);
  b.AddOffset(Slot(1), val);
  return Finish(b, s);
}

Table Chain(FlatBufferBuilder& b, const std::vector<int32_t>& inputs, const std::vector<int32_t>& outputs,
            const std::vector<Table>& instructions) {
  auto in = b.CreateVector(inputs);
  auto out = b.CreateVector(outputs);
  auto ins = b.CreateVector(instructions);
  auto s = b.StartTable();
  b.AddOffset(Slot(0), in);
  b.AddOffset(Slot(1), out);
  b.AddOffset(Slot(2), ins);
  return Finish(b, s);
}

Table Plan(FlatBufferBuilder& b, const MethodSpec& m) {
  std::vector<Table> values, instructions, delegates;
  std::vector<int32_t> inputs, outputs;
  if (m.segment >= 0) {
    for (const TensorSpec& t : m.inputs) {
      inputs.push_back(static_cast<int32_t>(values.size()));
      values.push_back(EValue(b, kValTensor, TensorValue(b, t)));
    }
    for (const TensorSpec& t : m.outputs) {
      outputs.push_back(static_cast<int32_t>(values.size()));
      values.push_back(EValue(b, kValTensor, TensorValue(b, t)));
    }
    std::vector<int32_t> args = inputs;
    args.insert(args.end(), outputs.begin(), outputs.end());
    auto args_vec = b.CreateVector(args);
    auto call_start = b.StartTable();
    b.AddElement<int32_t>(Slot(0), 0, -1);  // delegate_index 0 (written even though 0)
    b.AddOffset(Slot(1), args_vec);
    Table call = Finish(b, call_start);
    auto instr_start = b.StartTable();
    b.AddElement<uint8_t>(Slot(0), kInstrDelegateCall, 0);
    b.AddOffset(Slot(1), call);
    instructions.push_back(Finish(b, instr_start));

    std::vector<Table> specs;
    for (const auto& [key, value] : m.compile_specs) {
      auto k = b.CreateString(key);
      auto v = b.CreateVector(reinterpret_cast<const uint8_t*>(value.data()), value.size());
      auto s = b.StartTable();
      b.AddOffset(Slot(0), k);
      b.AddOffset(Slot(1), v);
      specs.push_back(Finish(b, s));
    }
    auto specs_vec = b.CreateVector(specs);
    auto ref_start = b.StartTable();
    b.AddElement<int8_t>(Slot(0), kLocationSegment, 0);
    b.AddElement<uint32_t>(Slot(1), static_cast<uint32_t>(m.segment), 0);
    Table ref = Finish(b, ref_start);
    auto id = b.CreateString(kBackendId);
    auto d = b.StartTable();
    b.AddOffset(Slot(0), id);
    b.AddOffset(Slot(1), ref);
    b.AddOffset(Slot(2), specs_vec);
    delegates.push_back(Finish(b, d));
  } else {
    for (const Constant& c : m.constants) {
      outputs.push_back(static_cast<int32_t>(values.size()));
      values.push_back(EValue(b, c.is_bool ? kValBool : kValInt, ConstantValue(b, c)));
    }
  }
  auto name = b.CreateString(m.name);
  auto values_vec = b.CreateVector(values);
  auto inputs_vec = b.CreateVector(inputs);
  auto outputs_vec = b.CreateVector(outputs);
  auto chains = b.CreateVector(std::vector<Table>{Chain(b, inputs, outputs, instructions)});
  auto operators = b.CreateVector(std::vector<Table>{});
  auto delegates_vec = b.CreateVector(delegates);
  auto buffer_sizes = b.CreateVector(std::vector<int64_t>{0});
  auto s = b.StartTable();
  b.AddOffset(Slot(0), name);
  b.AddOffset(Slot(2), values_vec);
  b.AddOffset(Slot(3), inputs_vec);
  b.AddOffset(Slot(4), outputs_vec);
  b.AddOffset(Slot(5), chains);
  b.AddOffset(Slot(6), operators);
  b.AddOffset(Slot(7), delegates_vec);
  b.AddOffset(Slot(8), buffer_sizes);
  return Finish(b, s);
}

template <typename T>
void Put(std::string* s, size_t at, T v) {
  std::memcpy(s->data() + at, &v, sizeof(T));  // little-endian hosts only (x86, arm64)
}

}  // namespace

std::string EncodeProgram(const ProgramSpec& spec) {
  FlatBufferBuilder b(4096);
  std::vector<Table> plans;
  for (const MethodSpec& m : spec.methods) plans.push_back(Plan(b, m));
  auto plans_vec = b.CreateVector(plans);
  std::vector<Table> segments;
  for (const SegmentSpec& seg : spec.segments) {
    auto s = b.StartTable();
    b.AddElement<uint64_t>(Slot(0), seg.offset, 0);
    b.AddElement<uint64_t>(Slot(1), seg.size, 0);
    segments.push_back(Finish(b, s));
  }
  auto segments_vec = b.CreateVector(segments);
  auto constant_offsets = b.CreateVector(std::vector<uint64_t>{0});
  auto cs = b.StartTable();
  b.AddElement<uint32_t>(Slot(0), spec.constant_segment, 0);
  b.AddOffset(Slot(1), constant_offsets);
  Table constant_segment = Finish(b, cs);
  auto empty_buffers = b.CreateVector(std::vector<Table>{});
  auto empty_inline = b.CreateVector(std::vector<Table>{});
  auto root = b.StartTable();
  b.AddElement<uint32_t>(Slot(0), kProgramVersion, 0);
  b.AddOffset(Slot(1), plans_vec);
  b.AddOffset(Slot(2), empty_buffers);
  b.AddOffset(Slot(3), empty_inline);
  b.AddOffset(Slot(4), segments_vec);
  b.AddOffset(Slot(5), constant_segment);
  b.Finish(Finish(b, root), kFileIdentifier);

  const auto* p = reinterpret_cast<const char*>(b.GetBufferPointer());
  const size_t n = b.GetSize();
  // Insert the header after the identifier; every offset inside the buffer is
  // relative, so only the root offset moves. 32 bytes keep every alignment.
  std::string out;
  out.reserve(n + kExtendedHeaderBytes);
  out.append(p, 8);
  out.append(kExtendedHeaderBytes, '\0');
  out.append(p + 8, n - 8);
  uint32_t root_offset;
  std::memcpy(&root_offset, p, 4);
  Put<uint32_t>(&out, 0, root_offset + kExtendedHeaderBytes);
  std::memcpy(out.data() + 8, kHeaderMagic, 4);
  Put<uint32_t>(&out, 12, kExtendedHeaderBytes);
  Put<uint64_t>(&out, 16, out.size());
  return out;
}

void SetSegmentBase(std::string* program, uint64_t segment_base_offset, uint64_t segment_data_size) {
  Put<uint64_t>(program, 24, segment_base_offset);
  Put<uint64_t>(program, 32, segment_data_size);
}

}  // namespace bitlens::pte
