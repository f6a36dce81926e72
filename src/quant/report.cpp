// quant/report: report.json and report.html of a quantization run. The HTML
// has no external resources: styles and SVG charts are inline.
#include "quant/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

namespace bitlens::quant {
namespace {

using ordered_json = nlohmann::ordered_json;

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string Escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string Bytes(uint64_t b) {
  if (b >= 1000000000ull) return Fmt("%.2f GB", b / 1e9);
  if (b >= 1000000ull) return Fmt("%.2f MB", b / 1e6);
  if (b >= 1000ull) return Fmt("%.1f kB", b / 1e3);
  return std::to_string(b) + " B";
}

const char* ComponentColor(Component c) {
  switch (c) {
    case Component::kVision: return "#4e79a7";
    case Component::kProjector: return "#f28e2b";
    case Component::kEmbed: return "#59a14f";
    case Component::kDecoder: return "#e15759";
    case Component::kLmHead: return "#76b7b2";
  }
  return "#999";
}

// A layer (or the rest of a component) with its converted weights summed.
struct LayerRow {
  Component component;
  int layer;
  int64_t params = 0;
  uint64_t bytes = 0;
  double max_rel_error = 0;
  std::string label() const {
    std::string s = ComponentName(component);
    if (layer >= 0) {
      s += ' ';
      s += std::to_string(layer);
    }
    return s;
  }
};

std::vector<LayerRow> Layers(const PipelineResult& r, const std::vector<const TensorResult*>& weights) {
  std::vector<LayerRow> rows;
  for (const TensorResult* t : weights) {
    if (rows.empty() || rows.back().component != t->component || rows.back().layer != t->layer) {
      rows.push_back({t->component, t->layer});
    }
    LayerRow& l = rows.back();
    l.params += t->params;
    l.bytes += t->bytes;
    if (!std::isnan(t->rel_error)) l.max_rel_error = std::max(l.max_rel_error, t->rel_error);
  }
  return rows;
}

struct Bar {
  std::string label;
  double value;
  const char* color;
};

// A vertical bar chart, value axis from 0 to the largest value.
std::string BarChart(const std::string& title, const std::string& unit, const std::vector<Bar>& bars) {
  if (bars.empty()) return "";
  const int w = 900, h = 260, left = 60, bottom = 70, top = 30;
  double vmax = 0;
  for (const Bar& b : bars) vmax = std::max(vmax, b.value);
  if (vmax <= 0) vmax = 1;
  const double plot_w = w - left - 10, plot_h = h - bottom - top;
  const double bw = plot_w / bars.size();
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(w) + "\" height=\"" +
                  std::to_string(h) + "\" role=\"img\"><title>" + Escape(title) + "</title>";
  s += "<text x=\"" + std::to_string(left) + "\" y=\"18\" font-size=\"14\" font-weight=\"bold\">" + Escape(title) +
       "</text>";
  for (int g = 0; g <= 4; ++g) {
    const double v = vmax * g / 4, y = top + plot_h - plot_h * g / 4;
    s += "<line x1=\"" + std::to_string(left) + "\" x2=\"" + std::to_string(w - 10) + "\" y1=\"" + Fmt("%.1f", y) +
         "\" y2=\"" + Fmt("%.1f", y) + "\" stroke=\"#ddd\"/>";
    s += "<text x=\"" + std::to_string(left - 4) + "\" y=\"" + Fmt("%.1f", y + 4) +
         "\" font-size=\"10\" text-anchor=\"end\">" + Fmt("%.3g", v) + "</text>";
  }
  s += "<text x=\"12\" y=\"" + Fmt("%.0f", top + plot_h / 2) + "\" font-size=\"10\" transform=\"rotate(-90 12 " +
       Fmt("%.0f", top + plot_h / 2) + ")\" text-anchor=\"middle\">" + Escape(unit) + "</text>";
  const size_t label_every = std::max<size_t>(1, bars.size() / 40);
  for (size_t i = 0; i < bars.size(); ++i) {
    const double bh = plot_h * bars[i].value / vmax;
    const double x = left + i * bw;
    s += "<rect x=\"" + Fmt("%.2f", x + bw * 0.1) + "\" y=\"" + Fmt("%.2f", top + plot_h - bh) + "\" width=\"" +
         Fmt("%.2f", std::max(0.5, bw * 0.8)) + "\" height=\"" + Fmt("%.2f", bh) + "\" fill=\"" + bars[i].color +
         "\"><title>" + Escape(bars[i].label) + ": " + Fmt("%.4g", bars[i].value) + "</title></rect>";
    if (i % label_every == 0) {
      const double lx = x + bw / 2, ly = top + plot_h + 8;
      s += "<text x=\"" + Fmt("%.1f", lx) + "\" y=\"" + Fmt("%.1f", ly) + "\" font-size=\"9\" transform=\"rotate(60 " +
           Fmt("%.1f", lx) + " " + Fmt("%.1f", ly) + ")\">" + Escape(bars[i].label) + "</text>";
    }
  }
  s += "</svg>\n";
  return s;
}

// "model.layers.3.self_attn.q_proj.weight" -> "3.q_proj" for chart labels.
std::string ShortName(const TensorResult& t) {
  std::string n = t.name;
  const size_t w = n.rfind(".weight");
  if (w != std::string::npos) n = n.substr(0, w);
  const size_t dot = n.rfind('.');
  std::string last = dot == std::string::npos ? n : n.substr(dot + 1);
  if (t.layer >= 0) return std::to_string(t.layer) + "." + last;
  return last;
}

}  // namespace

std::string ReportJson(const PipelineResult& r) {
  ordered_json j;
  j["tool"] = "bitlens quantize";
  j["source"] = r.source_dir;
  j["output"] = r.output_dir;
  if (!r.command_line.empty()) j["command"] = r.command_line;
  j["method"] = r.method;
  ordered_json comps = ordered_json::object();
  for (const auto& [c, f] : r.component_formats) comps[c] = f;
  j["components"] = comps;
  j["tied_lm_head"] = r.tied_lm_head;
  j["totals"] = {{"params", r.total_params},
                 {"source_tensor_bytes", r.source_bytes},
                 {"output_tensor_bytes", r.output_bytes},
                 {"bytes_written", r.bytes_written},
                 {"weight_bpw", r.weight_bpw},
                 {"model_bpw", r.model_bpw},
                 {"compression", r.output_bytes > 0 ? static_cast<double>(r.source_bytes) / r.output_bytes : 0.0},
                 {"seconds", r.seconds},
                 {"peak_rss_mib", r.peak_rss_mib},
                 {"threads", r.threads}};
  ordered_json files = ordered_json::array();
  for (const auto& f : r.files) files.push_back(f);
  j["files"] = files;
  ordered_json tensors = ordered_json::array();
  for (const TensorResult& t : r.tensors) {
    ordered_json e;
    e["name"] = t.name;
    e["component"] = ComponentName(t.component);
    e["layer"] = t.layer;
    e["format"] = t.format;
    e["packed"] = t.packed;
    e["params"] = t.params;
    e["bytes"] = t.bytes;
    e["bpw"] = t.bpw;
    if (!std::isnan(t.rel_error)) e["rel_error"] = t.rel_error;
    if (t.output_rel_error) e["output_rel_error"] = *t.output_rel_error;
    if (t.sensitivity) e["sensitivity"] = *t.sensitivity;
    e["seconds"] = t.seconds;
    tensors.push_back(e);
  }
  j["tensors"] = tensors;
  return j.dump(2) + "\n";
}

std::string ReportSummaryLine(const PipelineResult& r) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "%s params: %s -> %s (weights %.3f bpw, whole model %.3f bpw), %.1f s, peak RSS %.1f MiB",
                std::to_string(r.total_params).c_str(), Bytes(r.source_bytes).c_str(), Bytes(r.output_bytes).c_str(),
                r.weight_bpw, r.model_bpw, r.seconds, r.peak_rss_mib);
  return buf;
}

std::string ReportHtml(const PipelineResult& r) {
  std::vector<const TensorResult*> weights;
  for (const TensorResult& t : r.tensors) {
    if (!std::isnan(t.rel_error)) weights.push_back(&t);
  }
  std::string h =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>bitlens quantize report</title>\n"
      "<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:12px}"
      "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
      ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}"
      "</style></head><body>\n";
  h += "<h1>bitlens quantize</h1>\n<p>" + Escape(r.source_dir) + " &rarr; " + Escape(r.output_dir) + "<br>method <b>" +
       Escape(r.method) + "</b>";
  for (const auto& [c, f] : r.component_formats) h += ", " + Escape(c) + " <b>" + Escape(f) + "</b>";
  if (r.tied_lm_head) h += " (lm head tied to the embeddings)";
  h += "</p>\n";
  if (!r.command_line.empty()) h += "<p><code>" + Escape(r.command_line) + "</code></p>\n";
  h += "<h2>Totals</h2>\n<table>";
  auto row = [&](const std::string& k, const std::string& v) { h += "<tr><td>" + k + "</td><td>" + v + "</td></tr>"; };
  row("parameters", std::to_string(r.total_params));
  row("tensor bytes (source)", Bytes(r.source_bytes));
  row("tensor bytes (quantized)", Bytes(r.output_bytes));
  row("compression", Fmt("%.2f&times;", r.output_bytes ? static_cast<double>(r.source_bytes) / r.output_bytes : 0));
  row("average bpw, converted weights", Fmt("%.3f", r.weight_bpw));
  row("average bpw, whole model", Fmt("%.3f", r.model_bpw));
  row("files written", Bytes(r.bytes_written) + " in " + std::to_string(r.files.size()) + " files");
  row("time", Fmt("%.2f s", r.seconds));
  row("threads", std::to_string(r.threads));
  row("peak RSS (getrusage)", Fmt("%.1f MiB", r.peak_rss_mib));
  h += "</table>\n<p class=\"legend\">";
  for (Component c : {Component::kVision, Component::kProjector, Component::kEmbed, Component::kDecoder,
                      Component::kLmHead}) {
    h += "<span style=\"background:" + std::string(ComponentColor(c)) + "\"></span>" + ComponentName(c);
  }
  h += "</p>\n";

  std::vector<Bar> bpw, err, out_err, sens;
  for (const LayerRow& l : Layers(r, weights)) {
    bpw.push_back({l.label(), l.params ? 8.0 * l.bytes / l.params : 0, ComponentColor(l.component)});
  }
  for (const TensorResult* t : weights) {
    err.push_back({ShortName(*t) + " (" + t->format + ")", t->rel_error, ComponentColor(t->component)});
    if (t->output_rel_error) out_err.push_back({ShortName(*t), *t->output_rel_error, ComponentColor(t->component)});
  }
  for (const TensorResult& t : r.tensors) {
    if (t.sensitivity) sens.push_back({ShortName(t), *t.sensitivity, ComponentColor(t.component)});
  }
  h += "<h2>Per layer</h2>\n";
  h += BarChart("bits per weight per layer (converted weights, every scale and zero counted)", "bpw", bpw);
  h += BarChart("relative weight error ||W - Q(W)|| / ||W|| per tensor", "relative error", err);
  if (!out_err.empty()) h += BarChart("relative layer-output error on calibration data", "relative error", out_err);
  if (!sens.empty()) h += BarChart("sensitivity (loss increase when the layer alone is quantized)", "sensitivity", sens);

  h += "<h2>Tensors</h2>\n<table><tr><th>tensor</th><th>component</th><th>format</th><th>params</th><th>bytes</th>"
       "<th>bpw</th><th>rel. error</th><th>output error</th><th>sensitivity</th><th>s</th></tr>\n";
  for (const TensorResult& t : r.tensors) {
    h += "<tr><td>" + Escape(t.name) + "</td><td>" + ComponentName(t.component) + "</td><td>" + Escape(t.format) +
         "</td><td>" + std::to_string(t.params) + "</td><td>" + std::to_string(t.bytes) + "</td><td>" +
         Fmt("%.3f", t.bpw) + "</td><td>" + (std::isnan(t.rel_error) ? "" : Fmt("%.4g", t.rel_error)) + "</td><td>" +
         (t.output_rel_error ? Fmt("%.4g", *t.output_rel_error) : "") + "</td><td>" +
         (t.sensitivity ? Fmt("%.4g", *t.sensitivity) : "") + "</td><td>" + Fmt("%.3f", t.seconds) + "</td></tr>\n";
  }
  h += "</table>\n</body></html>\n";
  return h;
}

}  // namespace bitlens::quant
