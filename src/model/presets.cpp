// model/presets: shapes and special-token ids of every synth preset. Real
// shapes come from the models' published config.json files; the LLaVA-layout
// stand-ins for Phi-3.5-vision and SmolVLM say what they change in `note`.
#include "model/presets.h"

#include <algorithm>

namespace bitlens {
namespace {

constexpr double kClipMean[3] = {0.48145466, 0.4578275, 0.40821073};
constexpr double kClipStd[3] = {0.26862954, 0.26130258, 0.27577711};

// Chat templates in the Jinja that transformers' apply_chat_template reads;
// they render the same prompts as tokenizer/chat_template (kLlava15, kPhi3).
constexpr const char* kLlavaChatTemplate =
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>\n' }}{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] + ' ' }}{% endif %}{% endfor %}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";
constexpr const char* kPhi3ChatTemplate =
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";
// Phi-4-mini: the same turns without newlines.
constexpr const char* kPhi4ChatTemplate =
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>' }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
// SmolVLM: "<|im_start|>User:<image>text<end_of_utterance>\nAssistant:" (": " before text-first turns).
constexpr const char* kSmolVlmChatTemplate =
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' + message['content'] }}{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}"
    "{% elif c['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

// Phi-4-mini-instruct rope_scaling (longrope over rotary_dim/2 = 48 pairs).
const std::vector<double> kPhi4MiniShortFactor(48, 1.0);
const std::vector<double> kPhi4MiniLongFactor = {
    1.0, 1.118320672, 1.250641126, 1.398617824, 1.564103225, 1.74916897, 1.956131817, 2.187582649,
    2.446418898, 2.735880826, 3.059592084, 3.421605075, 3.826451687, 4.279200023, 4.785517845, 5.351743533,
    5.984965424, 6.693110555, 7.485043894, 8.370679318, 9.36110372, 10.4687158, 11.70738129, 13.09260651,
    14.64173252, 16.37415215, 18.31155283, 20.47818807, 22.90118105, 25.61086418, 28.64115884, 32.03,
    32.1, 32.13, 32.23, 32.6, 32.61, 32.64, 32.66, 32.7,
    32.71, 32.93, 32.97, 33.28, 33.49, 33.5, 44.16, 47.77};
// Phi-3.5-mini / Phi-3.5-vision rope_scaling (head_dim 96, full rotary: 48 pairs).
const std::vector<double> kPhi35ShortFactor = {
    1.08, 1.1, 1.1300000000000001, 1.2800000000000002, 1.3100000000000003, 1.4500000000000004,
    1.4500000000000004, 1.9500000000000008, 2.030000000000001, 2.4299999999999926, 2.5699999999999896,
    2.9499999999999815, 3.729999999999965, 3.869999999999962, 4.189999999999955, 4.43999999999995,
    4.6399999999999455, 4.979999999999938, 5.159999999999934, 5.279999999999932, 5.759999999999922,
    5.889999999999919, 5.889999999999919, 5.969999999999917, 6.089999999999915, 6.2799999999999105,
    6.7699999999999, 6.8899999999998975, 7.109999999999893, 7.129999999999892, 7.179999999999891,
    7.289999999999889, 7.339999999999888, 7.559999999999883, 7.619999999999882, 7.69999999999988,
    7.879999999999876, 7.879999999999876, 7.879999999999876, 7.939999999999875, 7.949999999999875,
    7.979999999999874, 8.19999999999987, 8.439999999999864, 8.469999999999864, 8.589999999999861,
    8.809999999999857, 8.999999999999853};
const std::vector<double> kPhi35LongFactor = {
    1.0800000429153442, 1.1100000143051147, 1.1399999856948853, 1.340000033378601, 1.5899999141693115,
    1.600000023841858, 1.6200000047683716, 2.620000123977661, 3.2300000190734863, 3.2300000190734863,
    4.789999961853027, 7.400000095367432, 7.700000286102295, 9.09000015258789, 12.199999809265137,
    17.670000076293945, 24.46000099182129, 28.57000160217285, 30.420001983642578, 30.840002059936523,
    32.590003967285156, 32.93000411987305, 42.320003509521484, 44.96000289916992, 50.340003967285156,
    50.45000457763672, 57.55000305175781, 57.93000411987305, 58.21000289916992, 60.1400032043457,
    62.61000442504883, 62.62000274658203, 62.71000289916992, 63.1400032043457, 63.1400032043457,
    63.77000427246094, 63.93000411987305, 63.96000289916992, 63.970001220703125, 64.02999877929688,
    64.06999969482422, 64.08000183105469, 64.12000274658203, 64.41000366210938, 64.4800033569336,
    64.51000213623047, 64.52999877929688, 64.83999633789062};

TextConfig LlamaText(int64_t vocab, int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads, int64_t kv_heads,
                     int64_t max_positions, double rope_theta) {
  TextConfig t;
  t.model_type = "llama";
  t.vocab_size = vocab;
  t.hidden_size = hidden;
  t.intermediate_size = intermediate;
  t.num_hidden_layers = layers;
  t.num_attention_heads = heads;
  t.num_key_value_heads = kv_heads;
  t.head_dim = hidden / heads;
  t.max_position_embeddings = max_positions;
  t.rms_norm_eps = 1e-5;
  t.rope.theta = rope_theta;
  t.bos_token_id = 1;
  t.eos_token_ids = {2};
  return t;
}

TextConfig Phi3Text(int64_t vocab, int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads, int64_t kv_heads,
                    double partial_rotary_factor, std::vector<double> short_factor, std::vector<double> long_factor) {
  TextConfig t;
  t.model_type = "phi3";
  t.vocab_size = vocab;
  t.hidden_size = hidden;
  t.intermediate_size = intermediate;
  t.num_hidden_layers = layers;
  t.num_attention_heads = heads;
  t.num_key_value_heads = kv_heads;
  t.head_dim = hidden / heads;
  t.max_position_embeddings = 131072;
  t.rms_norm_eps = 1e-5;
  t.partial_rotary_factor = partial_rotary_factor;
  t.rope.type = "longrope";
  t.rope.theta = 10000.0;
  t.rope.original_max_position_embeddings = 4096;
  t.rope.short_factor = std::move(short_factor);
  t.rope.long_factor = std::move(long_factor);
  return t;
}

// A tower of the given type with transformers' defaults for everything but the shape.
VisionConfig VisionTower(const char* model_type, int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads,
                         int64_t image, int64_t patch) {
  VisionConfig v = VisionConfigDefaults(model_type);
  v.hidden_size = hidden;
  v.intermediate_size = intermediate;
  v.num_hidden_layers = layers;
  v.num_attention_heads = heads;
  v.image_size = image;
  v.patch_size = patch;
  return v;
}

VisionConfig ClipVision(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads, int64_t image, int64_t patch) {
  return VisionTower("clip_vision_model", hidden, intermediate, layers, heads, image, patch);
}

VisionConfig SiglipVision(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads, int64_t image, int64_t patch) {
  return VisionTower("siglip_vision_model", hidden, intermediate, layers, heads, image, patch);
}

SynthImageProcessorSpec ClipProcessor(int64_t size) {
  SynthImageProcessorSpec p;
  p.processor_type = "CLIPImageProcessor";
  p.size = size;
  p.crop = size;
  std::copy(kClipMean, kClipMean + 3, p.mean);
  std::copy(kClipStd, kClipStd + 3, p.std);
  return p;
}

SynthImageProcessorSpec SiglipProcessor(int64_t size) {
  SynthImageProcessorSpec p;
  p.processor_type = "SiglipImageProcessor";
  p.size = size;
  p.crop = 0;
  for (int c = 0; c < 3; ++c) p.mean[c] = p.std[c] = 0.5;
  return p;
}

// Llama-2 style ids: <unk> 0, <s> 1, </s> 2, then the byte tokens.
SynthTokenizerSpec LlamaStyleTokenizer(std::vector<SpecialToken> extra) {
  SynthTokenizerSpec t;
  t.first_byte_id = 3;
  t.special_tokens = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (auto& s : extra) t.special_tokens.push_back(std::move(s));
  t.bos_token = "<s>";
  t.eos_token = "</s>";
  t.unk_token = "<unk>";
  t.add_bos = true;
  t.chat_template = kLlavaChatTemplate;
  return t;
}

void MakeLlava(SynthPreset* p, VisionConfig vision, int64_t image_token, const std::string& select_strategy,
               int64_t feature_layer) {
  p->config.model_type = "llava";
  p->config.architecture = "LlavaForConditionalGeneration";
  p->config.vision = std::move(vision);
  p->config.image_token_index = image_token;
  p->config.vision_feature_select_strategy = select_strategy;
  p->config.vision_feature_layer = feature_layer;
  p->config.projector_hidden_act = "gelu";
  p->config.multimodal_projector_bias = true;
}

void MakeText(SynthPreset* p) {
  p->config.model_type = p->config.text.model_type;
  p->config.architecture = p->config.text.model_type == "phi3" ? "Phi3ForCausalLM" : "LlamaForCausalLM";
}

// ---------------------------------------------------------------- tiny
// Text: hidden 64, 2 layers, 4 heads over 2 KV heads (GQA), vocab 512 =
// 3 + 256 bytes + 248 merges + the family's tokens, padded to 512 as
// llava-1.5 pads 32002 to 32064. Vision: hidden 32 (unlike the text side, so
// swapped projector dimensions cannot go unnoticed), 2 layers, 32 px images
// in 8 px patches = 16 image tokens.
constexpr int64_t kTinyVocab = 512;

SynthPreset TinyPreset(SynthFamily family) {
  SynthPreset p;
  p.name = "tiny";
  p.family = family;
  p.default_dtype = DType::kF32;
  if (family == SynthFamily::kPhi3) {
    // A miniature Phi-4-mini: partial rotary 0.75 (rotary_dim 12, 6 factor
    // pairs), longrope, tied embeddings, GQA. Chat tokens in Phi-3's order.
    p.config.text = Phi3Text(kTinyVocab, 64, 128, 2, 4, 2, 0.75, {1.0, 1.0, 1.05, 1.1, 1.2, 1.4},
                             {1.0, 1.5, 2.0, 4.0, 8.0, 16.0});
    p.config.text.tie_word_embeddings = true;
    p.config.text.bos_token_id = 1;
    p.config.text.eos_token_ids = {507};
    p.config.text.pad_token_id = 507;
    p.sliding_window = 262144;
    p.generation_eos_ids = {507, 508, 510};
    p.tokenizer = LlamaStyleTokenizer({{"<|endoftext|>", 507}, {"<|assistant|>", 508}, {"<|system|>", 509},
                                       {"<|end|>", 510}, {"<|user|>", 511}});
    p.tokenizer.eos_token = "<|endoftext|>";
    p.tokenizer.pad_token = "<|endoftext|>";
    p.tokenizer.add_bos = false;
    p.tokenizer.chat_template = kPhi3ChatTemplate;
    MakeText(&p);
    p.note = "tiny Phi-3 (Phi-4-mini structure: partial rotary, longrope, tied embeddings, GQA)";
    return p;
  }
  // Llama decoders use llava-1.5's tokens: <image> right after the base
  // vocabulary, then <pad>.
  p.config.text = LlamaText(kTinyVocab, 64, 128, 2, 4, 2, 2048, 10000.0);
  p.config.text.pad_token_id = 508;
  p.generation_eos_ids = {2};
  p.tokenizer = LlamaStyleTokenizer({{"<image>", 507}, {"<pad>", 508}});
  p.tokenizer.pad_token = "<pad>";
  if (family == SynthFamily::kLlama) {
    MakeText(&p);
    p.note = "tiny Llama";
    return p;
  }
  if (family == SynthFamily::kLlava) {
    MakeLlava(&p, ClipVision(32, 64, 2, 2, 32, 8), 507, "default", -2);
    p.clip_projection_dim = 32;
    p.image_processor = ClipProcessor(32);
    p.note = "tiny LLaVA (CLIP tower + Llama decoder)";
  } else {
    MakeLlava(&p, SiglipVision(32, 64, 2, 2, 32, 8), 507, "full", -1);
    p.image_processor = SiglipProcessor(32);
    p.note = "tiny LLaVA with a SigLIP tower + Llama decoder";
  }
  return p;
}

// ---------------------------------------------------------------- real shapes

SynthPreset Phi4MiniPreset() {
  SynthPreset p;
  p.name = "phi-4-mini";
  p.family = SynthFamily::kPhi3;
  p.default_dtype = DType::kBF16;
  p.config.text = Phi3Text(200064, 3072, 8192, 32, 24, 8, 0.75, kPhi4MiniShortFactor, kPhi4MiniLongFactor);
  p.config.text.tie_word_embeddings = true;
  p.config.text.bos_token_id = 199999;
  p.config.text.eos_token_ids = {199999};
  p.config.text.pad_token_id = 199999;
  p.sliding_window = 262144;
  p.generation_eos_ids = {199999, 200020};
  MakeText(&p);
  // o200k-style ids: bytes first; Phi-4-mini's chat tokens at their real ids.
  p.tokenizer.first_byte_id = 0;
  p.tokenizer.special_tokens = {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}, {"<|assistant|>", 200019},
                                {"<|end|>", 200020},       {"<|user|>", 200021},        {"<|system|>", 200022}};
  p.tokenizer.bos_token = "<|endoftext|>";
  p.tokenizer.eos_token = "<|endoftext|>";
  p.tokenizer.pad_token = "<|endoftext|>";
  p.tokenizer.unk_token = "<|endoftext|>";
  p.tokenizer.add_bos = false;
  p.tokenizer.chat_template = kPhi4ChatTemplate;
  p.note = "Phi-4-mini shapes (the text model of Phi-4-multimodal-instruct), random weights";
  return p;
}

SynthPreset Phi35VisionPreset() {
  SynthPreset p;
  p.name = "phi-3.5-vision";
  p.family = SynthFamily::kLlava;
  p.default_dtype = DType::kBF16;
  p.config.text = Phi3Text(32064, 3072, 8192, 32, 32, 32, 1.0, kPhi35ShortFactor, kPhi35LongFactor);
  p.config.text.bos_token_id = 1;
  p.config.text.eos_token_ids = {2};
  p.config.text.pad_token_id = 32000;
  p.sliding_window = 262144;
  p.generation_eos_ids = {32007, 32001, 32000, 2};
  MakeLlava(&p, ClipVision(1024, 4096, 24, 16, 336, 14), 32011, "default", -2);
  p.clip_projection_dim = 768;
  p.image_processor = ClipProcessor(336);
  p.tokenizer = LlamaStyleTokenizer(
      {{"<|endoftext|>", 32000}, {"<|assistant|>", 32001}, {"<|system|>", 32006}, {"<|end|>", 32007},
       {"<|user|>", 32010}, {"<image>", 32011}});
  p.tokenizer.eos_token = "<|endoftext|>";
  p.tokenizer.pad_token = "<|endoftext|>";
  p.tokenizer.add_bos = false;
  p.tokenizer.chat_template = kPhi3ChatTemplate;
  p.note = "Phi-3.5-vision shapes (CLIP ViT-L/14-336 + Phi-3-mini decoder) written in the LLaVA layout: "
           "one 336 px image = 576 tokens through a 2-layer MLP projector, no HD crops or learnable separators";
  return p;
}

SynthPreset Llava15Preset() {
  SynthPreset p;
  p.name = "llava-1.5-7b";
  p.family = SynthFamily::kLlava;
  p.default_dtype = DType::kF16;
  p.config.text = LlamaText(32064, 4096, 11008, 32, 32, 32, 4096, 10000.0);
  p.config.text.pad_token_id = 32001;
  p.generation_eos_ids = {2};
  MakeLlava(&p, ClipVision(1024, 4096, 24, 16, 336, 14), 32000, "default", -2);
  p.clip_projection_dim = 768;
  p.image_processor = ClipProcessor(336);
  p.tokenizer = LlamaStyleTokenizer({{"<image>", 32000}, {"<pad>", 32001}});
  p.tokenizer.pad_token = "<pad>";
  p.note = "llava-1.5-7b-hf shapes (CLIP ViT-L/14-336 + Vicuna-7B), random weights";
  return p;
}

SynthPreset SmolVlmPreset() {
  SynthPreset p;
  p.name = "smolvlm-256m";
  p.family = SynthFamily::kLlavaSiglip;
  p.default_dtype = DType::kBF16;
  p.config.text = LlamaText(49280, 576, 1536, 30, 9, 3, 8192, 100000.0);
  p.config.text.head_dim = 64;
  p.config.text.pad_token_id = 2;
  MakeLlava(&p, SiglipVision(768, 3072, 12, 12, 512, 16), 49190, "full", -1);
  p.image_processor = SiglipProcessor(512);
  p.generation_eos_ids = {2, 49279};
  // SmolVLM's own ids and chat format (SmolLM2 vocabulary + Idefics3 tokens).
  p.tokenizer.first_byte_id = 3;
  p.tokenizer.special_tokens = {{"<|endoftext|>", 0},
                                {"<|im_start|>", 1},
                                {"<|im_end|>", 2},
                                {"<fake_token_around_image>", 49189},
                                {"<image>", 49190},
                                {"<end_of_utterance>", 49279}};
  p.tokenizer.bos_token = "<|im_start|>";
  p.tokenizer.eos_token = "<end_of_utterance>";
  p.tokenizer.pad_token = "<|im_end|>";
  p.tokenizer.unk_token = "<|endoftext|>";
  p.tokenizer.add_bos = false;
  p.tokenizer.chat_template = kSmolVlmChatTemplate;
  p.note = "SmolVLM-256M shapes (SigLIP-B/16-512 tower + SmolLM2 decoder) written in the LLaVA layout: "
           "one 512 px image = 1024 tokens through a 2-layer MLP projector, no pixel shuffle or image splitting";
  return p;
}

}  // namespace

std::string_view SynthFamilyName(SynthFamily family) {
  switch (family) {
    case SynthFamily::kLlava: return "llava";
    case SynthFamily::kLlavaSiglip: return "llava-siglip";
    case SynthFamily::kLlama: return "llama";
    case SynthFamily::kPhi3: return "phi3";
  }
  return "?";
}

std::optional<SynthFamily> SynthFamilyFromName(std::string_view name) {
  for (SynthFamily f : {SynthFamily::kLlava, SynthFamily::kLlavaSiglip, SynthFamily::kLlama, SynthFamily::kPhi3}) {
    if (SynthFamilyName(f) == name) return f;
  }
  return std::nullopt;
}

std::vector<std::string> SynthPresetNames() {
  return {"tiny", "phi-4-mini", "phi-3.5-vision", "llava-1.5-7b", "smolvlm-256m"};
}

Result<SynthPreset> FindSynthPreset(std::optional<SynthFamily> family, const std::string& preset_name) {
  if (preset_name == "tiny") {
    if (!family) return InvalidArgument("preset 'tiny' needs --family (llava, llava-siglip, llama, phi3)");
    return TinyPreset(*family);
  }
  SynthPreset p;
  if (preset_name == "phi-4-mini") p = Phi4MiniPreset();
  else if (preset_name == "phi-3.5-vision") p = Phi35VisionPreset();
  else if (preset_name == "llava-1.5-7b") p = Llava15Preset();
  else if (preset_name == "smolvlm-256m") p = SmolVlmPreset();
  else {
    return InvalidArgument("unknown preset '" + preset_name +
                           "' (tiny, phi-4-mini, phi-3.5-vision, llava-1.5-7b, smolvlm-256m)");
  }
  if (family && *family != p.family) {
    return InvalidArgument("preset '" + preset_name + "' is a " + std::string(SynthFamilyName(p.family)) +
                           " model; drop --family or pass --family " + std::string(SynthFamilyName(p.family)));
  }
  return p;
}

}  // namespace bitlens
