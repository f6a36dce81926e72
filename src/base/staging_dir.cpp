// base/staging_dir: create, commit (rename into place) and clean up.
#include "base/staging_dir.h"

#include <system_error>

#include "base/log.h"

namespace bitlens {

namespace fs = std::filesystem;

Result<std::unique_ptr<StagingDir>> StagingDir::Create(const fs::path& out) {
  fs::path tmp = out;
  tmp += ".tmp";
  std::error_code ec;
  if (fs::exists(tmp, ec)) {
    BL_LOG_WARN("%s: removing a staging directory left by an interrupted run", tmp.c_str());
    fs::remove_all(tmp, ec);
    if (ec) return IoError(tmp.string() + ": cannot remove stale staging directory (" + ec.message() + ")");
  }
  fs::create_directories(tmp, ec);
  if (ec) return IoError(tmp.string() + ": cannot create directory (" + ec.message() + ")");
  return std::unique_ptr<StagingDir>(new StagingDir(out, tmp));
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

Status StagingDir::Commit() {
  std::error_code ec;
  if (fs::exists(out_, ec)) {  // --force: swap, then drop the old directory
    fs::path old = out_;
    old += ".old";
    fs::remove_all(old, ec);
    fs::rename(out_, old, ec);
    if (ec) return IoError(out_.string() + ": cannot move the existing directory aside (" + ec.message() + ")");
    fs::rename(tmp_, out_, ec);
    if (ec) {
      std::error_code restore;
      fs::rename(old, out_, restore);
      return IoError(out_.string() + ": cannot rename " + tmp_.string() + " into place (" + ec.message() + ")");
    }
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp_, out_, ec);
    if (ec) return IoError(out_.string() + ": cannot rename " + tmp_.string() + " into place (" + ec.message() + ")");
  }
  committed_ = true;
  return Status::Ok();
}

}  // namespace bitlens
