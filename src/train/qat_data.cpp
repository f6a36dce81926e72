// train/qat_data: calibration lines and synthetic samples -> VlmExamples.
#include "train/qat_data.h"

#include <algorithm>

#include "quant/calib_jsonl.h"
#include "tokenizer/tokenizer.h"
#include "train/data/vqa_data.h"
#include "train/examples.h"
#include "vision/image.h"

namespace bitlens::train {

Result<QatData> BuildQatData(const std::string& model_dir, const ModelConfig& config, const QatDataOptions& options) {
  BL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::Load(model_dir));
  ExampleContext context;
  context.tokenizer = tokenizer.get();
  context.config = &config;
  BL_ASSIGN_OR_RETURN(context.image_processor, LoadImageProcessorConfig(model_dir));
  if (!config.text.eos_token_ids.empty()) context.eos_id = static_cast<int32_t>(config.text.eos_token_ids[0]);

  QatData data;
  if (!options.calib.empty()) {
    BL_ASSIGN_OR_RETURN(std::vector<quant::CalibSample> lines, quant::ReadCalibJsonl(options.calib));
    for (const quant::CalibSample& line : lines) {
      const std::string where = options.calib + ":" + std::to_string(line.line);
      if (line.image.empty() || !line.answer || line.answer->empty()) {
        return InvalidArgument(where + ": qat needs an \"image\" and an \"answer\" on every line");
      }
      VqaSample sample;
      BL_ASSIGN_OR_RETURN(sample.image, DecodeImageFile(line.image));
      sample.question = line.prompt;
      sample.answer = *line.answer;
      auto ex = BuildExample(sample, context);
      if (!ex.ok()) return InvalidArgument(where + ": " + ex.status().message());
      data.train.push_back(std::move(*ex));
    }
  }
  DataOptions synth;
  synth.seed = options.seed;
  synth.image_size = std::max(kMinImageSize, config.vision ? static_cast<int>(config.vision->image_size) : 64);
  for (int64_t i = 0; i < options.synthetic; ++i) {
    BL_ASSIGN_OR_RETURN(VlmExample ex, BuildExample(MakeSample(synth, Split::kTrain, i), context));
    data.train.push_back(std::move(ex));
  }
  for (int64_t i = 0; i < options.eval_samples; ++i) {
    BL_ASSIGN_OR_RETURN(VlmExample ex, BuildExample(MakeSample(synth, Split::kValidation, i), context));
    data.eval.push_back(std::move(ex));
  }
  if (data.train.empty()) return InvalidArgument("qat needs training data: --calib FILE.jsonl and/or --synthetic N");
  return data;
}

}  // namespace bitlens::train
