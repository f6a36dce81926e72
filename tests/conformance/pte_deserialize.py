"""ExecuTorch conformance of `bitlens export --to pte`: ExecuTorch's own deserializer
(executorch.exir._serialize._program.deserialize_pte_binary, PyPI executorch 1.5.1) reads a
.pte exported from the tiny llava and must see the runner's methods, one BitlensBackend delegate
per compute method whose processed data is a 4096-aligned segment holding a .blz image, the
constant metadata methods' values, and the eh00 header's segment layout.

Usage: pte_deserialize.py [build-dir]  (default $BUILD_DIR or build; needs its bitlens binary). Exits non-zero on
any mismatch and prints what differed."""
import os
import subprocess
import sys
import tempfile

from executorch.exir._serialize._program import _ExtendedHeader, deserialize_pte_binary
from executorch.exir.schema import DataLocation, DelegateCall

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD_DIR", "build")
BITLENS = os.path.join(BUILD, "bitlens")
COMPUTE = ["vision_encoder", "token_embedding", "text_decoder"]
METADATA = ["get_max_seq_len", "get_max_context_len", "get_bos_id", "get_eos_ids", "get_vocab_size", "use_kv_cache"]


def check(cond, what):
    if not cond:
        print("pte_deserialize: FAIL:", what)
        sys.exit(1)


def main():
    with tempfile.TemporaryDirectory() as d:
        src, pte = os.path.join(d, "src"), os.path.join(d, "tiny.pte")
        subprocess.run([BITLENS, "synth", "--family", "llava", "--preset", "tiny", "-o", src], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([BITLENS, "export", "--model", src, "--to", "pte", "-q", "-o", pte], check=True,
                       stdout=subprocess.DEVNULL)
        data = open(pte, "rb").read()

    check(data[4:8] == b"ET12", f"file identifier {data[4:8]!r}")
    eh = _ExtendedHeader.from_bytes(data[8:])
    check(eh.is_valid(), "extended header not valid")
    check(eh.segment_base_offset % 4096 == 0, f"segment base offset {eh.segment_base_offset} not 4096-aligned")
    check(eh.segment_base_offset + eh.segment_data_size == len(data),
          f"segments end at {eh.segment_base_offset + eh.segment_data_size}, file is {len(data)} bytes")

    # Segment offsets as stored (the deserializer moves segment bytes back into the program).
    from executorch.exir._serialize._program import _flatbuffer_to_program
    raw = _flatbuffer_to_program(data[: eh.program_size])
    for i, s in enumerate(raw.segments):
        check(s.offset % 128 == 0, f"segment {i} offset {s.offset} not 128-aligned")

    program = deserialize_pte_binary(data).program
    names = [p.name for p in program.execution_plan]
    check(names == COMPUTE + METADATA, f"methods {names}")
    for plan, raw_plan in zip(program.execution_plan[: len(COMPUTE)], raw.execution_plan):
        check(len(plan.delegates) == 1, f"{plan.name}: {len(plan.delegates)} delegates")
        dlg = plan.delegates[0]
        check(dlg.id == "BitlensBackend", f"{plan.name}: delegate id {dlg.id}")
        # As stored: processed data in a 4096-aligned segment; the deserializer then moves the
        # segment's bytes inline (backend_delegate_data), where they must be the .blz image.
        ref = raw_plan.delegates[0].processed
        check(ref.location == DataLocation.SEGMENT, f"{plan.name}: processed location {ref.location}")
        seg = raw.segments[ref.index]
        check(seg.offset % 4096 == 0, f"{plan.name}: blob segment offset {seg.offset} not 4096-aligned")
        blob = data[eh.segment_base_offset + seg.offset: eh.segment_base_offset + seg.offset + seg.size]
        check(blob[:8] == b"BITLENSZ", f"{plan.name}: blob starts {blob[:8]!r}")
        inline = program.backend_delegate_data[dlg.processed.index].data
        check(bytes(inline) == blob, f"{plan.name}: deserialized delegate data differs from the segment")
        specs = {c.key: bytes(c.value) for c in dlg.compile_specs}
        check(specs.get("method") == plan.name.encode(), f"{plan.name}: compile specs {specs}")
        instrs = [i for c in plan.chains for i in c.instructions]
        check(len(instrs) == 1 and isinstance(instrs[0].instr_args, DelegateCall),
              f"{plan.name}: instructions {instrs}")
        check(len(plan.inputs) >= 1 and len(plan.outputs) == 1, f"{plan.name}: io {plan.inputs} {plan.outputs}")
    consts = {}
    for plan in program.execution_plan[len(COMPUTE):]:
        vals = [plan.values[i].val for i in plan.outputs]
        consts[plan.name] = [getattr(v, "int_val", getattr(v, "bool_val", None)) for v in vals]
        check(not plan.delegates and all(v is not None for v in consts[plan.name]), f"{plan.name}: {vals}")
    check(consts["use_kv_cache"] == [True], f"use_kv_cache {consts['use_kv_cache']}")
    check(consts["get_max_seq_len"][0] > 0 and consts["get_vocab_size"][0] > 0, f"{consts}")
    print(f"pte_deserialize: OK: {len(data)} bytes, {len(names)} methods, segments "
          f"{[(s.offset, s.size) for s in raw.segments]} at base {eh.segment_base_offset}; constants {consts}")


if __name__ == "__main__":
    main()
