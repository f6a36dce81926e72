// train/data/split_writer: WriteSplit. Images go to <dir>/<split>.tmp/ and are
// renamed to <dir>/<split>/ when all are written; the JSONL is written to
// <dir>/<split>.jsonl.tmp and renamed last, so a reader never sees a JSONL
// naming images that are not there, and an interrupted run leaves no split.
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include "base/staging_dir.h"
#include "train/data/png_write.h"
#include "train/data/vqa_data.h"

namespace bitlens::train {

namespace fs = std::filesystem;

namespace {

Status WriteFileAtomically(const fs::path& path, const std::string& bytes) {
  fs::path tmp = path;
  tmp += ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return IoError(tmp.string() + ": cannot open for writing");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return IoError(tmp.string() + ": write failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return IoError(path.string() + ": cannot rename " + tmp.string() + " into place (" + ec.message() + ")");
  return Status::Ok();
}

// "000042" for index 42 of a split with fewer than a million samples; wider when needed.
std::string ImageName(int64_t index, int64_t count) {
  int width = 6;
  for (int64_t n = 1'000'000; n < count && width < 19; n *= 10) ++width;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*lld.png", width, static_cast<long long>(index));
  return buf;
}

}  // namespace

Status WriteSplit(const DataOptions& options, Split split, int64_t count, const std::string& dir) {
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
  std::string jsonl;
  for (int64_t i = 0; i < count; ++i) {
    const VqaSample sample = MakeSample(options, split, i);
    const std::string image_name = ImageName(i, count);
    BL_TRY(data::WritePng(sample.image, (staging->path() / image_name).string()));
    nlohmann::ordered_json line;
    line["image"] = name + "/" + image_name;
    line["prompt"] = sample.question;
    line["answer"] = sample.answer;
    line["kind"] = std::string(QuestionKindName(sample.kind));
    jsonl += line.dump();
    jsonl += '\n';
  }
  BL_TRY(staging->Commit());
  return WriteFileAtomically(fs::path(dir) / (name + ".jsonl"), jsonl);
}

}  // namespace bitlens::train
