// vision/image_processor_config: preprocessor_config.json -> ImageProcessorConfig
// for CLIPImageProcessor and SiglipImageProcessor, with transformers' class
// defaults for absent keys and its legacy spellings of `size` and `crop_size`.
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "vision/image.h"

namespace bitlens {
namespace {

using json = nlohmann::json;

constexpr int kMaxConfiguredSide = 16384;

// Strips the backend suffix: transformers v5 names the PIL class
// "CLIPImageProcessorPil" and the torchvision one "...Fast"; the config
// semantics are the same and bitlens always follows the PIL path.
std::string CanonicalProcessorType(const std::string& type) {
  if (type == "CLIPImageProcessor" || type == "CLIPImageProcessorPil" || type == "CLIPImageProcessorFast" ||
      type == "CLIPFeatureExtractor") {
    return "CLIPImageProcessor";
  }
  if (type == "SiglipImageProcessor" || type == "SiglipImageProcessorPil" || type == "SiglipImageProcessorFast") {
    return "SiglipImageProcessor";
  }
  return "";
}

// Class defaults of the two processors (transformers' image_processing_*_clip/siglip).
ImageProcessorConfig DefaultsFor(const std::string& type) {
  ImageProcessorConfig c;
  c.processor_type = type;
  if (type == "SiglipImageProcessor") {
    c.resize_height = c.resize_width = 224;
    c.do_center_crop = false;
    for (int i = 0; i < 3; ++i) c.image_mean[i] = c.image_std[i] = 0.5f;
  } else {
    c.shortest_edge = 224;
    c.do_center_crop = true;
    c.crop_height = c.crop_width = 224;
  }
  return c;
}

class Parser {
 public:
  Parser(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  Status Error(const std::string& field, const std::string& what) const {
    return InvalidArgument(source_ + ": '" + field + "' " + what);
  }

  const json* Find(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  Status Bool(const char* key, bool* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return Error(key, "must be true or false, got " + v->dump());
    *out = v->get<bool>();
    return Status::Ok();
  }

  static bool AsSide(const json& v, int* out) {
    if (v.is_number_integer() || v.is_number_unsigned()) {
      const int64_t x = v.get<int64_t>();
      if (x <= 0 || x > kMaxConfiguredSide) return false;
      *out = static_cast<int>(x);
      return true;
    }
    if (v.is_number_float()) {  // 336.0 is still a size
      const double x = v.get<double>();
      if (!(x >= 1 && x <= kMaxConfiguredSide) || std::floor(x) != x) return false;
      *out = static_cast<int>(x);
      return true;
    }
    return false;
  }

  // `size`: {"shortest_edge"[, "longest_edge"]} | {"height", "width"} | int
  // (shortest edge) | [height, width].
  Status Size(ImageProcessorConfig* c) const {
    const json* v = Find("size");
    if (v == nullptr) return Status::Ok();
    const std::string range = "a positive integer up to " + std::to_string(kMaxConfiguredSide);
    int a = 0, b = 0;
    if (v->is_number()) {
      if (!AsSide(*v, &a)) return Error("size", "must be " + range + ", got " + v->dump());
      c->shortest_edge = a, c->longest_edge = 0, c->resize_height = c->resize_width = 0;
      return Status::Ok();
    }
    if (v->is_array()) {
      if (v->size() != 2 || !AsSide((*v)[0], &a) || !AsSide((*v)[1], &b)) {
        return Error("size", "as a list must be [height, width] of " + range + ", got " + v->dump());
      }
      c->resize_height = a, c->resize_width = b, c->shortest_edge = c->longest_edge = 0;
      return Status::Ok();
    }
    if (!v->is_object()) return Error("size", "must be an object, an integer or [height, width], got " + v->dump());
    auto side = [&](const char* key, int* out) -> Status {
      auto it = v->find(key);
      if (it == v->end() || it->is_null()) return Status::Ok();
      if (!AsSide(*it, out)) return Error(std::string("size.") + key, "must be " + range + ", got " + it->dump());
      return Status::Ok();
    };
    int se = 0, le = 0, h = 0, w = 0;
    BL_TRY(side("shortest_edge", &se));
    BL_TRY(side("longest_edge", &le));
    BL_TRY(side("height", &h));
    BL_TRY(side("width", &w));
    if (se > 0) {
      if (h || w) return Error("size", "has both shortest_edge and height/width: " + v->dump());
      c->shortest_edge = se, c->longest_edge = le, c->resize_height = c->resize_width = 0;
      return Status::Ok();
    }
    if (h > 0 && w > 0) {
      if (le) return Error("size", "has both longest_edge and height/width: " + v->dump());
      c->resize_height = h, c->resize_width = w, c->shortest_edge = c->longest_edge = 0;
      return Status::Ok();
    }
    if (v->contains("max_height") || v->contains("max_width") || le > 0) {
      return Unsupported(source_ + ": 'size' " + v->dump() +
                         " is not supported (bitlens resizes by shortest_edge or to height/width)");
    }
    return Error("size", "must have 'shortest_edge' or both 'height' and 'width', got " + v->dump());
  }

  // `crop_size`: {"height", "width"} | int (square).
  Status CropSize(ImageProcessorConfig* c) const {
    const json* v = Find("crop_size");
    if (v == nullptr) return Status::Ok();
    const std::string range = "a positive integer up to " + std::to_string(kMaxConfiguredSide);
    int h = 0, w = 0;
    if (v->is_number()) {
      if (!AsSide(*v, &h)) return Error("crop_size", "must be " + range + ", got " + v->dump());
      c->crop_height = c->crop_width = h;
      return Status::Ok();
    }
    if (!v->is_object()) return Error("crop_size", "must be {\"height\", \"width\"} or an integer, got " + v->dump());
    auto ih = v->find("height");
    auto iw = v->find("width");
    if (ih == v->end() || iw == v->end() || !AsSide(*ih, &h) || !AsSide(*iw, &w)) {
      return Error("crop_size", "must have 'height' and 'width', each " + range + ", got " + v->dump());
    }
    c->crop_height = h, c->crop_width = w;
    return Status::Ok();
  }

  Status Resample(ImageProcessorConfig* c) const {
    const json* v = Find("resample");
    if (v == nullptr) return Status::Ok();
    if (!v->is_number_integer() && !v->is_number_unsigned()) {
      return Error("resample", "must be a PIL filter number (1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming), got " +
                               v->dump());
    }
    const int64_t r = v->get<int64_t>();
    if (r == 0) {
      return Unsupported(source_ + ": 'resample' 0 (nearest) is not supported; bitlens implements PIL's "
                                   "convolution filters 1..5");
    }
    if (r < 1 || r > 5) return Error("resample", "must be a PIL filter number 0..5, got " + v->dump());
    c->resample = static_cast<int>(r);
    return Status::Ok();
  }

  Status Number(const char* key, double* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number()) return Error(key, "must be a number, got " + v->dump());
    *out = v->get<double>();
    if (!std::isfinite(*out)) return Error(key, "must be finite");
    return Status::Ok();
  }

  // image_mean / image_std: three numbers, or one for all channels.
  Status Triple(const char* key, float out[3], bool nonzero) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    double x[3];
    if (v->is_number()) {
      x[0] = x[1] = x[2] = v->get<double>();
    } else if (v->is_array() && v->size() == 3 && (*v)[0].is_number() && (*v)[1].is_number() &&
               (*v)[2].is_number()) {
      for (int i = 0; i < 3; ++i) x[i] = (*v)[i].get<double>();
    } else {
      return Error(key, "must be a list of 3 numbers (one per RGB channel), got " + v->dump());
    }
    for (int i = 0; i < 3; ++i) {
      if (!std::isfinite(x[i]) || (nonzero && x[i] == 0.0)) {
        return Error(key, nonzero ? "must hold finite non-zero numbers" : "must hold finite numbers");
      }
      // transformers makes an np.float32 array of them; so does this.
      out[i] = static_cast<float>(x[i]);
    }
    return Status::Ok();
  }

 private:
  const json& j_;
  std::string source_;
};

}  // namespace

Result<ImageProcessorConfig> ParseImageProcessorConfig(const std::string& json_text, const std::string& source) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(source + ": not valid JSON");
  if (!j.is_object()) return InvalidArgument(source + ": expected a JSON object at the top level");

  std::string type;
  for (const char* key : {"image_processor_type", "feature_extractor_type"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) return InvalidArgument(source + ": '" + key + "' must be a string");
    type = it->get<std::string>();
    break;
  }
  if (type.empty()) {
    return InvalidArgument(source + ": no 'image_processor_type' (expected CLIPImageProcessor or SiglipImageProcessor)");
  }
  const std::string canonical = CanonicalProcessorType(type);
  if (canonical.empty()) {
    return Unsupported(source + ": image processor '" + type +
                       "' is not supported (supported: CLIPImageProcessor, SiglipImageProcessor)");
  }

  ImageProcessorConfig c = DefaultsFor(canonical);
  const Parser p(j, source);
  BL_TRY(p.Bool("do_resize", &c.do_resize));
  BL_TRY(p.Bool("do_center_crop", &c.do_center_crop));
  BL_TRY(p.Bool("do_rescale", &c.do_rescale));
  BL_TRY(p.Bool("do_normalize", &c.do_normalize));
  BL_TRY(p.Bool("do_convert_rgb", &c.do_convert_rgb));
  BL_TRY(p.Size(&c));
  BL_TRY(p.CropSize(&c));
  BL_TRY(p.Resample(&c));
  BL_TRY(p.Number("rescale_factor", &c.rescale_factor));
  BL_TRY(p.Triple("image_mean", c.image_mean, /*nonzero=*/false));
  BL_TRY(p.Triple("image_std", c.image_std, /*nonzero=*/true));
  if (c.do_center_crop && (c.crop_height <= 0 || c.crop_width <= 0)) {
    return InvalidArgument(source + ": 'do_center_crop' is true but 'crop_size' is missing");
  }
  return c;
}

Result<ImageProcessorConfig> LoadImageProcessorConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/preprocessor_config.json";
  auto text = ReadTextFile(path);
  if (!text.ok()) return text.status();
  return ParseImageProcessorConfig(*text, path);
}

}  // namespace bitlens
