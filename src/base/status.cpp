#include "base/status.h"

namespace bitlens {

int Status::ExitCode() const {
  switch (code_) {
    case StatusCode::kOk: return 0;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kOutOfRange:
    case StatusCode::kUnsupported: return 2;
    case StatusCode::kCancelled: return 130;
    case StatusCode::kIoError:
    case StatusCode::kInternal: return 1;
  }
  return 1;
}

}  // namespace bitlens
