// quant/report: what a quantization run did, as report.json (machine
// readable) and report.html (self-contained: inline SVG bar charts of per-layer
// bits per weight, per-tensor relative error and sensitivity, and totals).
#pragma once

#include <string>

#include "quant/pipeline.h"

namespace bitlens::quant {

std::string ReportJson(const PipelineResult& result);
std::string ReportHtml(const PipelineResult& result);
// One line for the terminal: params, bytes, bpw, time, peak RSS.
std::string ReportSummaryLine(const PipelineResult& result);

}  // namespace bitlens::quant
