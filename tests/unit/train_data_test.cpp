// The synthetic vision-language data: deterministic bytes (with golden hashes
// so drift between machines is caught), disjoint splits, every question kind
// with its answer vocabulary, answers that agree with the rendered pixels,
// a tokenizer corpus covering every word, and the split files on disk.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/thread_pool.h"
#include "quant/calib_jsonl.h"
#include "test_paths.h"
#include "train/data/rng.h"
#include "train/data/sample_spec.h"
#include "train/data/vocab.h"
#include "train/data/vqa_data.h"
#include "vision/image.h"

namespace bitlens::train {
namespace {

namespace fs = std::filesystem;
using data::CellName;
using data::ColorName;
using data::ColorRgb;
using data::kNumCells;
using data::kNumColors;
using data::Rgb;

constexpr Split kSplits[] = {Split::kTrain, Split::kValidation, Split::kTest};

// Concatenation by appends (GCC 12 warns falsely on " " + std::string(...)).
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

uint64_t HashSample(const VqaSample& s) {
  std::string bytes(s.image.rgb.begin(), s.image.rgb.end());
  for (const std::string& field : {s.question, s.answer, std::string(QuestionKindName(s.kind))}) {
    bytes += '\0';
    bytes += field;
  }
  return data::HashText(bytes);
}

TEST(TrainData, SameOptionsGiveTheSameBytes) {
  DataOptions o;
  for (Split split : kSplits) {
    for (int64_t i = 0; i < 40; ++i) {
      const VqaSample a = MakeSample(o, split, i);
      const VqaSample b = MakeSample(o, split, i);
      ASSERT_EQ(a.image.rgb, b.image.rgb) << "split " << SplitName(split) << " index " << i;
      ASSERT_EQ(a.question, b.question);
      ASSERT_EQ(a.answer, b.answer);
      ASSERT_EQ(a.kind, b.kind);
      EXPECT_EQ(a.image.width, 64);
      EXPECT_EQ(a.image.height, 64);
    }
  }
  // A different seed gives different samples (not merely a shifted sequence).
  DataOptions other;
  other.seed = 2;
  int same = 0;
  for (int64_t i = 0; i < 40; ++i) same += HashSample(MakeSample(o, Split::kTrain, i)) == HashSample(MakeSample(other, Split::kTrain, i));
  EXPECT_LE(same, 2);
}

// Pixels and text of the first samples of each split, hashed. A change here
// means every recipe's data changed: update only on purpose, and say so.
TEST(TrainData, GoldenHashesOfTheFirstSamples) {
  DataOptions o;  // seed 1, 64 px, 15 % catalogue
  const std::map<Split, std::vector<uint64_t>> golden = {
      {Split::kTrain, {0xef28663732bf43c6, 0x618c3bf87db2cf3b, 0x95aa18f3f57027b5, 0x474df7a39a440bd1}},
      {Split::kValidation, {0x3d2fc9a5cb8c5d8d, 0x39dffa84687252c0, 0x5d0856450b887810, 0xf1c9f2297733e6a3}},
      {Split::kTest, {0xbbf9831bef8a1b1f, 0x8dc7bb2162149fc8, 0x5216c15145f8d6ad, 0x7b66db26c0c9af58}},
  };
  for (const auto& [split, hashes] : golden) {
    for (size_t i = 0; i < hashes.size(); ++i) {
      const VqaSample s = MakeSample(o, split, static_cast<int64_t>(i));
      const uint64_t h = HashSample(s);
      EXPECT_EQ(h, hashes[i]) << SplitName(split) << "[" << i << "] hash 0x" << std::hex << h << std::dec << " ("
                              << s.question << " -> " << s.answer << ")";
    }
  }
}

TEST(TrainData, SplitsNeverShareAScene) {
  std::map<Split, std::set<std::string>> scenes;
  for (uint64_t seed : {1u, 7u}) {
    DataOptions o;
    o.seed = seed;
    for (Split split : kSplits) {
      for (int64_t i = 0; i < 3000; ++i) {
        const data::SampleSpec spec = data::GenerateSampleSpec(o, split, i);
        const std::string d = data::CanonicalDescription(spec);
        ASSERT_EQ(data::SplitOfDescription(d), split) << d;
        scenes[split].insert(d);
      }
    }
  }
  for (Split a : kSplits) {
    for (Split b : kSplits) {
      if (a >= b) continue;
      std::vector<std::string> shared;
      std::set_intersection(scenes[a].begin(), scenes[a].end(), scenes[b].begin(), scenes[b].end(),
                            std::back_inserter(shared));
      EXPECT_TRUE(shared.empty()) << SplitName(a) << " and " << SplitName(b) << " share " << shared.size()
                                  << " scenes, e.g. " << shared.front();
    }
  }
  // The pool is large enough that splits are not tiny sets repeated.
  EXPECT_GT(scenes[Split::kTest].size(), 4500u);
}

std::set<std::string> Words(std::initializer_list<std::string_view (*)(int)> tables, std::initializer_list<int> sizes) {
  std::set<std::string> out;
  auto size = sizes.begin();
  for (auto table : tables) {
    for (int i = 0; i < *size; ++i) out.insert(std::string(table(i)));
    ++size;
  }
  return out;
}

TEST(TrainData, EveryKindAppearsWithItsAnswerVocabulary) {
  const std::set<std::string> colors = Words({ColorName}, {kNumColors});
  const std::set<std::string> shapes = Words({data::ShapeName}, {data::kNumShapes});
  const std::set<std::string> cells = Words({CellName}, {kNumCells});
  const std::set<std::string> counts = Words({data::CountWord}, {data::kMaxObjects + 1});
  const std::set<std::string> attributes =
      Words({ColorName, data::ShapeName, data::PatternName, data::SizeName},
            {kNumColors, data::kNumShapes, data::kNumPatterns, data::kNumSizes});
  const std::set<std::string> item_words =
      Words({ColorName, data::PatternName, data::ItemTypeName}, {kNumColors, data::kNumPatterns, data::kNumItemTypes});

  DataOptions o;
  const int n = 4000;
  std::map<QuestionKind, int> per_kind;
  std::map<QuestionKind, std::map<std::string, int>> answers;
  for (int64_t i = 0; i < n; ++i) {
    const data::SampleSpec s = data::GenerateSampleSpec(o, Split::kTrain, i);
    ++per_kind[s.kind];
    ++answers[s.kind][s.answer];
    EXPECT_FALSE(s.question.empty());
    EXPECT_EQ(s.question.find('{'), std::string::npos) << s.question;
    switch (s.kind) {
      case QuestionKind::kColor: EXPECT_TRUE(colors.count(s.answer)) << s.answer; break;
      case QuestionKind::kShape: EXPECT_TRUE(shapes.count(s.answer)) << s.answer; break;
      case QuestionKind::kCount: EXPECT_TRUE(counts.count(s.answer)) << s.answer; break;
      case QuestionKind::kPosition: EXPECT_TRUE(cells.count(s.answer)) << s.answer; break;
      case QuestionKind::kYesNo: EXPECT_TRUE(s.answer == "yes" || s.answer == "no") << s.answer; break;
      case QuestionKind::kAttributeAt: EXPECT_TRUE(attributes.count(s.answer)) << s.answer; break;
      case QuestionKind::kCaption:
        EXPECT_EQ(s.answer.back(), '.') << s.answer;
        EXPECT_TRUE(s.answer[0] == 'A') << s.answer;
        break;
      case QuestionKind::kCatalog: {
        std::istringstream words(s.answer);
        for (std::string w; words >> w;) EXPECT_TRUE(item_words.count(w)) << s.answer;
        break;
      }
    }
  }
  // 15 % catalogue, the rest shared evenly by the seven scene kinds.
  EXPECT_NEAR(per_kind[QuestionKind::kCatalog], 0.15 * n, 0.03 * n);
  for (int k = 0; k < kNumQuestionKinds - 1; ++k) {
    EXPECT_NEAR(per_kind[static_cast<QuestionKind>(k)], 0.85 * n / 7, 0.03 * n)
        << QuestionKindName(static_cast<QuestionKind>(k));
  }
  // Every answer of the closed kinds occurs, and none dominates.
  EXPECT_EQ(answers[QuestionKind::kColor].size(), colors.size());
  EXPECT_EQ(answers[QuestionKind::kShape].size(), shapes.size());
  EXPECT_EQ(answers[QuestionKind::kCount].size(), counts.size());
  EXPECT_EQ(answers[QuestionKind::kPosition].size(), cells.size());
  const int yes = answers[QuestionKind::kYesNo]["yes"], no = answers[QuestionKind::kYesNo]["no"];
  EXPECT_NEAR(static_cast<double>(yes) / (yes + no), 0.5, 0.06) << yes << " yes, " << no << " no";
  for (const auto& [word, c] : answers[QuestionKind::kCount]) {
    EXPECT_NEAR(static_cast<double>(c) / per_kind[QuestionKind::kCount], 0.2, 0.07) << word;
  }
}

// Questions that name an object by its attributes name exactly one object.
TEST(TrainData, QuestionsReferToExactlyOneObject) {
  DataOptions o;
  for (int64_t i = 0; i < 3000; ++i) {
    const data::SampleSpec s = data::GenerateSampleSpec(o, Split::kValidation, i);
    int matches = -1;
    const auto& objs = s.scene.objects;
    auto count = [&](auto pred) { return static_cast<int>(std::count_if(objs.begin(), objs.end(), pred)); };
    if (s.kind == QuestionKind::kColor) {
      for (int sh = 0; sh < data::kNumShapes; ++sh) {
        const std::string name = Cat({" ", data::ShapeName(sh)});
        if (s.question.find(name + "?") != std::string::npos || s.question.find(name + " have?") != std::string::npos) {
          matches = count([&](const data::ObjectSpec& x) { return x.shape == sh; });
          const auto it = std::find_if(objs.begin(), objs.end(), [&](const auto& x) { return x.shape == sh; });
          ASSERT_NE(it, objs.end());
          EXPECT_EQ(ColorName(it->color), s.answer) << s.question;
        }
      }
      EXPECT_EQ(matches, 1) << s.question << " in " << data::CanonicalDescription(s);
    }
    if (s.kind == QuestionKind::kShape) {
      for (int c = 0; c < kNumColors; ++c) {
        const std::string name(ColorName(c));
        if (s.question.find(" " + name + " ") != std::string::npos || s.question.find(" " + name + "?") != std::string::npos) {
          matches = count([&](const data::ObjectSpec& x) { return x.color == c; });
        }
      }
      EXPECT_EQ(matches, 1) << s.question << " in " << data::CanonicalDescription(s);
    }
    if (s.kind == QuestionKind::kPosition) {
      for (const auto& obj : objs) {
        const std::string named = Cat({" ", ColorName(obj.color), " ", data::ShapeName(obj.shape)});
        if (s.question.find(named + "?") != std::string::npos || s.question.find(named + " located") != std::string::npos) {
          matches = count([&](const data::ObjectSpec& x) { return x.color == obj.color && x.shape == obj.shape; });
          EXPECT_EQ(CellName(obj.cell), s.answer) << s.question;
        }
      }
      EXPECT_EQ(matches, 1) << s.question << " in " << data::CanonicalDescription(s);
    }
  }
}

// What a reader of the pixels alone can tell: which palette colours (exact
// RGB, so anti-aliased edges and pattern shades do not count) sit in each
// cell of the 3x3 grid.
struct PixelOracle {
  explicit PixelOracle(const Image& img) {
    for (int y = 0; y < img.height; ++y) {
      for (int x = 0; x < img.width; ++x) {
        const uint8_t* p = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
        const int cell = (y * 3 / img.height) * 3 + x * 3 / img.width;
        for (int c = 0; c < kNumColors; ++c) {
          const Rgb rgb = ColorRgb(c);
          if (p[0] == rgb.r && p[1] == rgb.g && p[2] == rgb.b) ++pixels[cell][c];
        }
      }
    }
  }
  std::set<std::string> ColorsIn(int cell) const {
    std::set<std::string> out;
    for (int c = 0; c < kNumColors; ++c) {
      if (pixels[cell][c] >= 3) out.insert(std::string(ColorName(c)));
    }
    return out;
  }
  int CellsWith(const std::string& color) const {
    int n = 0;
    for (int cell = 0; cell < kNumCells; ++cell) n += ColorsIn(cell).count(color);
    return n;
  }
  int Occupied() const {
    int n = 0;
    for (int cell = 0; cell < kNumCells; ++cell) n += !ColorsIn(cell).empty();
    return n;
  }
  std::string Dominant() const {
    int best = 0, total[kNumColors] = {};
    for (int cell = 0; cell < kNumCells; ++cell) {
      for (int c = 0; c < kNumColors; ++c) total[c] += pixels[cell][c];
    }
    for (int c = 1; c < kNumColors; ++c) best = total[c] > total[best] ? c : best;
    return std::string(ColorName(best));
  }
  int pixels[kNumCells][kNumColors] = {};
};

int CellIn(const std::string& text) {
  for (int c = 0; c < kNumCells; ++c) {
    if (text.find("the " + std::string(CellName(c))) != std::string::npos) return c;
  }
  return -1;
}

std::string ColorIn(const std::string& text) {
  for (int c = 0; c < kNumColors; ++c) {
    const std::string name(ColorName(c));
    if (text.find(" " + name + " ") != std::string::npos || text.find(" " + name + "?") != std::string::npos) return name;
  }
  return "";
}

int CountWordValue(const std::string& w) {
  for (int n = 0; n <= data::kMaxObjects; ++n) {
    if (data::CountWord(n) == w) return n;
  }
  return -1;
}

TEST(TrainData, AnswersAgreeWithTheRenderedPixels) {
  DataOptions o;
  std::map<std::string, int> checked;
  for (int64_t i = 0; i < 4000; ++i) {
    const VqaSample s = MakeSample(o, Split::kTrain, i);
    const PixelOracle px(s.image);
    const std::string& q = s.question;
    const int cell = CellIn(q);
    const std::string color = ColorIn(q);
    const std::string where = std::to_string(i) + ": " + q + " -> " + s.answer;
    if (s.kind == QuestionKind::kAttributeAt && q.find("color") != std::string::npos) {
      ASSERT_GE(cell, 0) << where;
      EXPECT_EQ(px.ColorsIn(cell), std::set<std::string>{s.answer}) << where;
      ++checked["color at a place"];
    } else if (s.kind == QuestionKind::kCount && q.find("objects") != std::string::npos) {
      const int expected = CountWordValue(s.answer);
      EXPECT_EQ(color.empty() ? px.Occupied() : px.CellsWith(color), expected) << where;
      ++checked[color.empty() ? "count objects" : "count by colour"];
    } else if (s.kind == QuestionKind::kPosition) {
      ASSERT_FALSE(color.empty()) << where;
      int answer_cell = -1;
      for (int c = 0; c < kNumCells; ++c) answer_cell = CellName(c) == s.answer ? c : answer_cell;
      ASSERT_GE(answer_cell, 0) << where;
      EXPECT_TRUE(px.ColorsIn(answer_cell).count(color)) << where;
      ++checked["position"];
    } else if (s.kind == QuestionKind::kColor) {
      EXPECT_GT(px.CellsWith(s.answer), 0) << where;
      ++checked["color"];
    } else if (s.kind == QuestionKind::kYesNo && cell >= 0 && q.find("empty") != std::string::npos) {
      EXPECT_EQ(px.ColorsIn(cell).empty(), s.answer == "yes") << where;
      ++checked["empty"];
    } else if (s.kind == QuestionKind::kYesNo && q.rfind("Is there an object in", 0) == 0) {
      EXPECT_EQ(!px.ColorsIn(cell).empty(), s.answer == "yes") << where;
      ++checked["occupied"];
    } else if (s.kind == QuestionKind::kYesNo && q.rfind("Is the object in", 0) == 0 && !color.empty()) {
      EXPECT_EQ(px.ColorsIn(cell).count(color) == 1, s.answer == "yes") << where;
      ++checked["color at, yes/no"];
    } else if (s.kind == QuestionKind::kCaption) {
      // One phrase per occupied cell, each naming the colour found there.
      std::vector<std::string> phrases;
      std::string rest = s.answer.substr(0, s.answer.size() - 1);
      for (size_t at; (at = std::min(rest.find(", "), rest.find(" and "))) != std::string::npos;) {
        phrases.push_back(rest.substr(0, at));
        rest = rest.substr(at + (rest.compare(at, 2, ", ") == 0 ? 2 : 5));
      }
      phrases.push_back(rest);
      EXPECT_EQ(static_cast<int>(phrases.size()), px.Occupied()) << where;
      for (const std::string& p : phrases) {
        const int c = CellIn(p);
        ASSERT_GE(c, 0) << p;
        EXPECT_TRUE(px.ColorsIn(c).count(ColorIn(p))) << where << " / " << p;
      }
      ++checked["caption"];
    } else if (s.kind == QuestionKind::kCatalog && (q.find("color") != std::string::npos || q == "What is this item?")) {
      EXPECT_EQ(px.Dominant(), s.answer.substr(0, s.answer.find(' '))) << where;
      ++checked["catalogue colour"];
    }
  }
  for (const char* what : {"color at a place", "count objects", "count by colour", "position", "color", "empty",
                           "occupied", "color at, yes/no", "caption", "catalogue colour"}) {
    EXPECT_GE(checked[what], 20) << what;
  }
}

TEST(TrainData, ImageSizeIsHonoured) {
  for (int size : {32, 96}) {
    DataOptions o;
    o.image_size = size;
    const VqaSample s = MakeSample(o, Split::kTest, 3);
    EXPECT_EQ(s.image.width, size);
    EXPECT_EQ(s.image.height, size);
    EXPECT_EQ(s.image.rgb.size(), static_cast<size_t>(size * size * 3));
    // The same scene and question at any size.
    const VqaSample ref = MakeSample(DataOptions{}, Split::kTest, 3);
    EXPECT_EQ(s.question, ref.question);
    EXPECT_EQ(s.answer, ref.answer);
  }
}

std::set<std::string> SplitWords(const std::string& text) {
  std::set<std::string> out;
  std::string w;
  for (char ch : text + " ") {
    if (ch == ' ' || ch == ',' || ch == '.' || ch == '?') {
      if (!w.empty()) out.insert(w);
      w.clear();
    } else {
      w += ch;
    }
  }
  return out;
}

TEST(TrainData, TokenizerCorpusHoldsEveryQuestionAndAnswerWord) {
  DataOptions o;
  const std::vector<std::string> corpus = TokenizerCorpus(o);
  std::set<std::string> lines(corpus.begin(), corpus.end());
  std::set<std::string> words;
  for (const std::string& line : corpus) {
    for (const std::string& w : SplitWords(line)) words.insert(w);
  }
  for (Split split : kSplits) {
    for (int64_t i = 0; i < 1500; ++i) {
      const data::SampleSpec s = data::GenerateSampleSpec(o, split, i);
      // Every question is a corpus line verbatim, and so is every short answer.
      EXPECT_TRUE(lines.count(s.question)) << s.question;
      if (s.kind != QuestionKind::kCaption) {
        EXPECT_TRUE(lines.count(s.answer)) << s.answer;
      }
      for (const std::string& w : SplitWords(s.answer)) EXPECT_TRUE(words.count(w)) << w << " in " << s.answer;
    }
  }
  EXPECT_EQ(corpus, TokenizerCorpus(o));  // deterministic as well
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(TrainData, WriteSplitOutputParsesAsCalibrationJsonl) {
  const std::string dir = testing::ScratchDir();
  DataOptions o;
  ASSERT_TRUE(WriteSplit(o, Split::kTest, 30, dir).ok());
  auto samples = quant::ReadCalibJsonl(dir + "/test.jsonl");
  ASSERT_TRUE(samples.ok()) << samples.status().message();
  ASSERT_EQ(samples->size(), 30u);
  for (int i = 0; i < 30; ++i) {
    const VqaSample want = MakeSample(o, Split::kTest, i);
    const quant::CalibSample& got = (*samples)[i];
    EXPECT_EQ(got.prompt, want.question);
    ASSERT_TRUE(got.answer.has_value());
    EXPECT_EQ(*got.answer, want.answer);
    char name[32];
    std::snprintf(name, sizeof(name), "/test/%06d.png", i);
    EXPECT_EQ(got.image, dir + name);
    auto img = DecodeImageFile(got.image);
    ASSERT_TRUE(img.ok()) << img.status().message();
    EXPECT_EQ(img->rgb, want.image.rgb) << got.image;
  }
  // The "kind" field names the question kind.
  std::istringstream lines(Slurp(dir + "/test.jsonl"));
  std::string first;
  std::getline(lines, first);
  EXPECT_NE(first.find("\"kind\":\"" + std::string(QuestionKindName(MakeSample(o, Split::kTest, 0).kind)) + "\""),
            std::string::npos)
      << first;
  // Writing again replaces the split, leaves no temporaries and the same bytes.
  const std::string before = Slurp(dir + "/test.jsonl");
  const std::string png_before = Slurp(dir + "/test/000007.png");
  ASSERT_TRUE(WriteSplit(o, Split::kTest, 10, dir).ok());
  EXPECT_EQ(Slurp(dir + "/test/000007.png"), png_before);
  EXPECT_FALSE(fs::exists(dir + "/test/000010.png"));
  EXPECT_EQ(before.substr(0, Slurp(dir + "/test.jsonl").size()), Slurp(dir + "/test.jsonl"));
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

TEST(TrainData, WriteSplitBytesDoNotDependOnTheThreadCount) {
  const std::string dir = testing::ScratchDir();
  const size_t threads = NumThreads();
  std::string jsonl[2], png[2];
  for (size_t t : {1, 2}) {
    SetNumThreads(t);
    const std::string out = dir + "/t" + std::to_string(t);
    ASSERT_TRUE(WriteSplit(DataOptions{}, Split::kValidation, 40, out).ok());
    jsonl[t - 1] = Slurp(out + "/validation.jsonl");
    png[t - 1] = Slurp(out + "/validation/000033.png");
  }
  SetNumThreads(threads);
  EXPECT_EQ(jsonl[0], jsonl[1]);
  EXPECT_EQ(png[0], png[1]);
  EXPECT_FALSE(png[0].empty());
}

TEST(TrainData, WriteSplitRefusesBadOptions) {
  const std::string dir = testing::ScratchDir();
  DataOptions o;
  EXPECT_EQ(WriteSplit(o, Split::kTrain, 0, dir).code(), StatusCode::kInvalidArgument);
  o.image_size = 8;
  EXPECT_EQ(WriteSplit(o, Split::kTrain, 1, dir).code(), StatusCode::kInvalidArgument);
  o = DataOptions{};
  o.catalog_fraction = 1.5;
  EXPECT_EQ(WriteSplit(o, Split::kTrain, 1, dir).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir + "/train.jsonl"));
}

TEST(TrainData, WriteSplitReportsProgressAndCancelsCleanly) {
  const std::string dir = testing::ScratchDir();
  DataOptions o;
  std::vector<int64_t> reports;
  WriteSplitHooks hooks;
  hooks.on_progress = [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 300);
    reports.push_back(done);
  };
  ASSERT_TRUE(WriteSplit(o, Split::kTrain, 300, dir, hooks).ok());
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back(), 300);
  EXPECT_TRUE(std::is_sorted(reports.begin(), reports.end()));
  const std::string jsonl = Slurp(dir + "/train.jsonl");

  // Cancelled while writing a larger split: the earlier split stays as it was.
  std::atomic<bool> cancel{false};
  hooks.cancel = &cancel;
  hooks.on_progress = [&](int64_t, int64_t) { cancel.store(true); };
  const Status s = WriteSplit(o, Split::kTrain, 1000, dir, hooks);
  EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.message();
  EXPECT_EQ(Slurp(dir + "/train.jsonl"), jsonl);
  EXPECT_TRUE(fs::exists(dir + "/train/000299.png"));
  EXPECT_FALSE(fs::exists(dir + "/train/000300.png"));
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

TEST(TrainData, CliWritesASplit) {
  const std::string dir = testing::ScratchDir();
  auto r = testing::RunCli("data --split validation --count 12 --seed 3 --image-size 48 -o " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto samples = quant::ReadCalibJsonl(dir + "/validation.jsonl");
  ASSERT_TRUE(samples.ok()) << samples.status().message();
  EXPECT_EQ(samples->size(), 12u);
  DataOptions o;
  o.seed = 3;
  o.image_size = 48;
  auto img = DecodeImageFile((*samples)[5].image);
  ASSERT_TRUE(img.ok()) << img.status().message();
  EXPECT_EQ(img->rgb, MakeSample(o, Split::kValidation, 5).image.rgb);
}

TEST(TrainData, CliRefusesBadFlagsWithOneLine) {
  const std::string dir = testing::ScratchDir();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--split dev --count 3 -o " + dir, "--split 'dev'"},
      {"--count 3 -o " + dir, "--split"},
      {"--split train -o " + dir, "--count"},
      {"--split train --count 0 -o " + dir, "--count '0'"},
      {"--split train --count 1x -o " + dir, "--count '1x'"},
      {"--split train --count 3 --image-size 8 -o " + dir, "--image-size '8'"},
      {"--split train --count 3 --seed -1 -o " + dir, "--seed '-1'"},
      {"--split train --count 3 --catalog-fraction 2 -o " + dir, "--catalog-fraction '2'"},
      {"--split train --count 3", "-o DIR"},
  };
  for (const auto& [args, needle] : cases) {
    auto r = testing::RunCli("data " + args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(dir + "/train.jsonl"));
}

}  // namespace
}  // namespace bitlens::train
