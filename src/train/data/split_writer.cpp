// train/data/split_writer: WriteSplit. Images go to <dir>/<split>.tmp/ and are
// renamed to <dir>/<split>/ when all are written; the JSONL is streamed to
// <dir>/<split>.jsonl.tmp and renamed last, so a reader never sees a JSONL
// naming images that are not there, and a failed or cancelled run leaves no
// split behind. Samples are drawn and PNG-encoded in parallel blocks and
// written in index order, so the files do not depend on the thread count.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/staging_dir.h"
#include "base/thread_pool.h"
#include "train/data/png_write.h"
#include "train/data/vqa_data.h"

namespace bitlens::train {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kBlock = 256;  // samples drawn in parallel between progress reports

// "000042" for index 42 of a split with at most a million samples; wider when needed.
std::string ImageName(int64_t index, int64_t count) {
  int width = 6;
  for (int64_t n = 1'000'000; n < count && width < 19; n *= 10) ++width;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*lld.png", width, static_cast<long long>(index));
  return buf;
}

// The JSONL under construction: removed unless renamed into place.
class PendingFile {
 public:
  static Result<std::unique_ptr<PendingFile>> Open(const fs::path& path) {
    fs::path tmp = path;
    tmp += ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) return IoError(tmp.string() + ": cannot open for writing");
    return std::unique_ptr<PendingFile>(new PendingFile(path, tmp, f));
  }
  ~PendingFile() {
    if (file_) std::fclose(file_);
    std::error_code ec;
    if (!committed_) fs::remove(tmp_, ec);
  }
  Status Append(const std::string& bytes) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
      return IoError(tmp_.string() + ": write failed (disk full?)");
    }
    return Status::Ok();
  }
  Status Commit() {
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) return IoError(tmp_.string() + ": write failed (disk full?)");
    std::error_code ec;
    fs::rename(tmp_, path_, ec);
    if (ec) return IoError(path_.string() + ": cannot rename " + tmp_.string() + " into place (" + ec.message() + ")");
    committed_ = true;
    return Status::Ok();
  }

 private:
  PendingFile(fs::path path, fs::path tmp, FILE* f) : path_(std::move(path)), tmp_(std::move(tmp)), file_(f) {}
  fs::path path_, tmp_;
  FILE* file_;
  bool committed_ = false;
};

struct EncodedSample {
  std::string png;
  std::string json_line;
  Status status;
};

}  // namespace

Status WriteSplit(const DataOptions& options, Split split, int64_t count, const std::string& dir) {
  return WriteSplit(options, split, count, dir, WriteSplitHooks{});
}

Status WriteSplit(const DataOptions& options, Split split, int64_t count, const std::string& dir,
                  const WriteSplitHooks& hooks) {
  if (count < 1) return InvalidArgument("sample count must be at least 1 (got " + std::to_string(count) + ")");
  if (options.image_size < kMinImageSize || options.image_size > kMaxImageSize) {
    return InvalidArgument("image size must be between " + std::to_string(kMinImageSize) + " and " +
                           std::to_string(kMaxImageSize) + " pixels (got " + std::to_string(options.image_size) + ")");
  }
  if (!(options.catalog_fraction >= 0.0 && options.catalog_fraction <= 1.0)) {
    return InvalidArgument("catalogue fraction must be between 0 and 1 (got " +
                           std::to_string(options.catalog_fraction) + ")");
  }
  if (dir.empty()) return InvalidArgument("no output directory given");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir + ": cannot create directory (" + ec.message() + ")");

  const std::string name(SplitName(split));
  BL_ASSIGN_OR_RETURN(std::unique_ptr<StagingDir> staging, StagingDir::Create(fs::path(dir) / name));
  BL_ASSIGN_OR_RETURN(std::unique_ptr<PendingFile> jsonl, PendingFile::Open(fs::path(dir) / (name + ".jsonl")));
  std::vector<EncodedSample> block(static_cast<size_t>(std::min(count, kBlock)));
  for (int64_t start = 0; start < count; start += kBlock) {
    if (hooks.cancel && hooks.cancel->load()) return Cancelled("interrupted; nothing was written to " + dir);
    const int64_t n = std::min(kBlock, count - start);
    ParallelFor(static_cast<size_t>(n), 1, [&](size_t begin, size_t end, size_t) {
      for (size_t j = begin; j < end; ++j) {
        const int64_t index = start + static_cast<int64_t>(j);
        const VqaSample sample = MakeSample(options, split, index);
        EncodedSample& out = block[j];
        auto png = data::EncodePng(sample.image);
        out.status = png.status();
        if (png.ok()) out.png = std::move(*png);
        nlohmann::ordered_json line;
        line["image"] = name + "/" + ImageName(index, count);
        line["prompt"] = sample.question;
        line["answer"] = sample.answer;
        line["kind"] = std::string(QuestionKindName(sample.kind));
        out.json_line = line.dump() + "\n";
      }
    });
    for (int64_t j = 0; j < n; ++j) {
      const EncodedSample& e = block[static_cast<size_t>(j)];
      const std::string path = (staging->path() / ImageName(start + j, count)).string();
      if (!e.status.ok()) return e.status.WithContext(path);
      BL_TRY(data::WriteFileBytes(path, e.png));
      BL_TRY(jsonl->Append(e.json_line));
    }
    if (hooks.on_progress) hooks.on_progress(start + n, count);
  }
  BL_TRY(staging->Commit());
  return jsonl->Commit();
}

}  // namespace bitlens::train
