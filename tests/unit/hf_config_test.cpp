#include "formats/hf_config.h"

#include <gtest/gtest.h>

#include "base/mmap_file.h"
#include "test_paths.h"

namespace bitlens {
namespace {

TEST(HfConfig, RealLlava15ConfigGetsTransformersDefaults) {
  BL_REQUIRE_TEST_DATA(path, "configs/llava-1.5-7b-hf/config.json");
  auto text = ReadTextFile(path);
  ASSERT_TRUE(text.ok());
  auto c = ParseModelConfig(*text, path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->model_type, "llava");
  EXPECT_EQ(c->text.hidden_size, 4096);  // llama default, absent from the file
  EXPECT_EQ(c->text.num_hidden_layers, 32);
  EXPECT_EQ(c->text.vocab_size, 32064);
  ASSERT_TRUE(c->vision.has_value());
  EXPECT_EQ(c->vision->hidden_act, "quick_gelu");
  EXPECT_EQ(c->vision->image_size, 336);
  EXPECT_EQ(c->vision_feature_layer, -2);
  EXPECT_EQ(c->image_seq_length(), 576);
}

TEST(HfConfig, Phi3LongropeAndV5RopeParameters) {
  const std::string phi3 = R"({"model_type":"phi3","hidden_size":64,"num_attention_heads":4,"num_key_value_heads":2,
    "num_hidden_layers":2,"intermediate_size":128,"vocab_size":100,"partial_rotary_factor":0.5,
    "max_position_embeddings":1024,"original_max_position_embeddings":64,
    "rope_scaling":{"type":"longrope","short_factor":[1,1,1,1],"long_factor":[2,2,2,2]}})";
  auto c = ParseModelConfig(phi3, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->text.rope.type, "longrope");
  EXPECT_EQ(c->text.rope.original_max_position_embeddings, 64);
  EXPECT_EQ(c->text.head_dim, 16);

  const std::string v5 = R"({"model_type":"llama","hidden_size":64,"num_attention_heads":4,"num_hidden_layers":1,
    "intermediate_size":128,"vocab_size":100,"rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,
    "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}})";
  auto l = ParseModelConfig(v5, "config.json");
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ(l->text.rope.type, "llama3");
  EXPECT_EQ(l->text.rope.theta, 500000.0);
}

TEST(HfConfig, BadConfigsNameTheFileAndTheField) {
  struct Case { const char* json; const char* expect; };
  const Case cases[] = {
      {"{not json", "malformed JSON"},
      {R"({"hidden_size": 4})", "missing 'model_type'"},
      {R"({"model_type": "mamba"})", "model_type 'mamba' is not supported"},
      {R"({"model_type": "llama", "hidden_size": "big"})", "'hidden_size' must be an integer"},
      {R"({"model_type": "llama", "num_attention_heads": 6, "num_key_value_heads": 4})", "not a multiple"},
      {R"({"model_type": "llava", "vision_config": {"model_type": "vit"}})", "vision model_type 'vit'"},
  };
  for (const auto& c : cases) {
    auto r = ParseModelConfig(c.json, "dir/config.json");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().rfind("dir/config.json", 0), 0u) << r.status().message();
    EXPECT_EQ(r.status().ExitCode(), 2);
  }
}

}  // namespace
}  // namespace bitlens
