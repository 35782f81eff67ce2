import json

import pytest
import torch

from elcore.errors import ConfigError, ModelNotFoundError
from elcore.model import CONFIG_NAME, ElqConfig, ElqModel


def test_save_and_load_are_mirror_images(tiny_model, tmp_path):
    tiny_model.config.threshold = -3.25
    tiny_model.save_pretrained(str(tmp_path / "m"))
    saved = json.loads((tmp_path / "m" / CONFIG_NAME).read_text())
    assert saved["threshold"] == -3.25 and saved["hidden_size"] == 32 and saved["max_mention_length"] == 10
    assert saved["versions"]["torch"] == torch.__version__
    assert (tmp_path / "m" / "mention_head" / "model.safetensors").exists()
    loaded = ElqModel.from_pretrained(str(tmp_path / "m"))
    assert loaded.config == tiny_model.config
    for (name, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert loaded.entity_fingerprint() == tiny_model.entity_fingerprint()


def test_round_trip_through_memory_filesystem(tiny_model):
    tiny_model.save_pretrained("memory://models/tiny")
    loaded = ElqModel.from_pretrained("memory://models/tiny")
    assert torch.equal(loaded.mention_head.linear.weight, tiny_model.mention_head.linear.weight)


def test_entity_fingerprint_follows_the_entity_weights(tiny_model):
    before = tiny_model.entity_fingerprint()
    with torch.no_grad():
        tiny_model.entity_encoder.embeddings.word_embeddings.weight[5, 0] += 1.0
    assert tiny_model.entity_fingerprint() != before


def test_entity_pooling_options(tiny_base_dir):
    cls_model = ElqModel.from_base(str(tiny_base_dir), max_context_length=32, context_stride=12)
    mean_model = ElqModel.from_base(
        str(tiny_base_dir), max_context_length=32, context_stride=12, entity_pooling="mean"
    )
    tokens = cls_model.tokenize_entities([("Paris", "capital of france"), ("Berlin", "")])
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    states = cls_model.entity_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(cls_model.encode_entities(ids, mask), states[:, 0])
    expected = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert torch.allclose(mean_model.encode_entities(ids, mask), expected, atol=1e-6)
    unit_model = ElqModel.from_base(
        str(tiny_base_dir),
        max_context_length=32,
        context_stride=12,
        entity_pooling="mean",
        normalize_entities=True,
    )
    unit = unit_model.encode_entities(ids, mask)
    assert torch.allclose(unit, expected / expected.norm(dim=-1, keepdim=True), atol=1e-6)
    # cached vectors are keyed by the fingerprint: unit vectors must not reuse unnormalised ones
    assert unit_model.entity_fingerprint() != mean_model.entity_fingerprint()


def test_bad_config_values_are_clear_errors():
    with pytest.raises(ConfigError, match="entity_pooling"):
        ElqConfig(entity_pooling="max").validate()
    with pytest.raises(ConfigError, match="top_k_entities"):
        ElqConfig(top_k_entities=0).validate()
    with pytest.raises(ConfigError, match="unknown"):
        ElqConfig().replace(treshold=1.0)


def test_missing_model_directory(tmp_path):
    with pytest.raises(ModelNotFoundError, match="elq_config.json"):
        ElqModel.from_pretrained(str(tmp_path))
