// base/staging_dir: write a whole output directory, or nothing. Output goes
// to `<out>.tmp`; Commit() renames it into place (replacing an old `out`),
// and the staging directory is removed if the writer fails or is interrupted.
#pragma once

#include <filesystem>
#include <memory>

#include "base/status.h"

namespace bitlens {

class StagingDir {
 public:
  // Creates `<out>.tmp` afresh, removing one an interrupted run left behind.
  static Result<std::unique_ptr<StagingDir>> Create(const std::filesystem::path& out);
  ~StagingDir();  // removes the staging directory unless committed
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return tmp_; }
  // Renames the staging directory to `out`. An existing `out` is moved aside
  // first and restored if the rename fails, so `out` is never half-written.
  Status Commit();

 private:
  StagingDir(std::filesystem::path out, std::filesystem::path tmp)
      : out_(std::move(out)), tmp_(std::move(tmp)) {}

  std::filesystem::path out_;
  std::filesystem::path tmp_;
  bool committed_ = false;
};

}  // namespace bitlens
