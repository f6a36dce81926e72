// runtime/eval_report: the evaluation report as a fixed-width table (stdout
// of `bitlens eval`) and as JSON (--json). Undefined metrics (no items of a
// kind, no reference) print as "-" and are JSON null.
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "runtime/eval.h"

namespace bitlens {
namespace {

std::string Cell(double v, const char* fmt) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string Row(const std::string& name, const EvalStats& s, bool reference) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%-12s %6lld %8lld %9s %11s", name.c_str(), static_cast<long long>(s.count),
                static_cast<long long>(s.correct), Cell(s.accuracy(), "%.4f").c_str(),
                Cell(s.perplexity(), "%.4f").c_str());
  std::string out = buf;
  if (reference) {
    std::snprintf(buf, sizeof(buf), " %10s %7s", Cell(s.kl(), "%.6f").c_str(), Cell(s.top1_agreement(), "%.4f").c_str());
    out += buf;
  }
  return out + "\n";
}

nlohmann::ordered_json Number(double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(); }

nlohmann::ordered_json StatsJson(const EvalStats& s, bool reference) {
  nlohmann::ordered_json j;
  j["count"] = s.count;
  j["correct"] = s.correct;
  j["accuracy"] = Number(s.accuracy());
  j["answer_tokens"] = s.answer_tokens;
  j["perplexity"] = Number(s.perplexity());
  if (reference) {
    j["kl"] = Number(s.kl());
    j["top1_agreement"] = Number(s.top1_agreement());
  }
  return j;
}

}  // namespace

std::string FormatEvalTable(const EvalReport& r) {
  const bool ref = r.has_reference();
  std::string out = "kind          count  correct  accuracy  perplexity";
  out += ref ? "         kl    top1\n" : "\n";
  for (const auto& [kind, s] : r.kinds) out += Row(kind, s, ref);
  out += Row("answers", r.answers, ref);
  out += Row("all", r.all, ref);
  char buf[160];
  std::snprintf(buf, sizeof(buf), "accuracy %s (answers, captions excluded); caption perplexity %s; %.1f s\n",
                Cell(r.answers.accuracy(), "%.4f").c_str(), Cell(r.caption_perplexity(), "%.4f").c_str(), r.seconds);
  out += buf;
  return out;
}

std::string EvalReportJson(const EvalReport& r) {
  const bool ref = r.has_reference();
  nlohmann::ordered_json j;
  j["model"] = r.model;
  j["reference"] = ref ? nlohmann::ordered_json(r.reference) : nlohmann::ordered_json();
  j["items"] = r.all.count;
  j["accuracy"] = Number(r.answers.accuracy());
  j["caption_perplexity"] = Number(r.caption_perplexity());
  if (ref) {
    j["kl"] = Number(r.all.kl());
    j["top1_agreement"] = Number(r.all.top1_agreement());
  }
  j["seconds"] = r.seconds;
  nlohmann::ordered_json kinds = nlohmann::ordered_json::object();
  for (const auto& [kind, s] : r.kinds) kinds[kind] = StatsJson(s, ref);
  j["kinds"] = std::move(kinds);
  j["answers"] = StatsJson(r.answers, ref);
  j["all"] = StatsJson(r.all, ref);
  nlohmann::ordered_json preds = nlohmann::ordered_json::array();
  for (const EvalPrediction& p : r.predictions) {
    nlohmann::ordered_json e;
    e["kind"] = p.kind;
    e["question"] = p.question;
    e["answer"] = p.answer;
    e["prediction"] = p.prediction;
    e["correct"] = p.correct;
    preds.push_back(std::move(e));
  }
  j["predictions"] = std::move(preds);
  // Text from files may hold invalid UTF-8: replaced rather than thrown.
  return j.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace bitlens
