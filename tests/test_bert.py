import json

import pytest
import torch
from transformers import AutoModel

from elcore.bert import BertEncoder, load_encoder


@pytest.fixture(scope="module")
def batch():
    ids = torch.tensor([[2, 7, 8, 9, 3], [2, 10, 3, 0, 0]])
    return ids, (ids != 0).long()


def _states(encoder, batch):
    with torch.no_grad():
        return encoder(input_ids=batch[0], attention_mask=batch[1]).last_hidden_state


def test_matches_transformers_on_a_bert_checkpoint(tiny_base_dir, batch):
    ours, theirs = load_encoder(str(tiny_base_dir)), AutoModel.from_pretrained(str(tiny_base_dir))
    assert isinstance(ours, BertEncoder) and not ours.training
    assert set(ours.state_dict()) == set(theirs.state_dict())
    real = batch[1].bool()
    assert torch.allclose(_states(ours, batch)[real], _states(theirs, batch)[real], atol=1e-5)


def test_saved_encoder_loads_in_transformers(tiny_base_dir, tmp_path, batch):
    ours = load_encoder(str(tiny_base_dir))
    ours.save_pretrained(str(tmp_path / "enc"))
    again = AutoModel.from_pretrained(str(tmp_path / "enc"))
    real = batch[1].bool()
    assert torch.allclose(_states(ours, batch)[real], _states(again, batch)[real], atol=1e-5)


def test_prefixed_checkpoint_keys_load(tiny_base_dir, tmp_path, batch):
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_base_dir / "model.safetensors"))
    (tmp_path / "prefixed").mkdir()
    save_file({f"bert.{k}": v for k, v in state.items()}, str(tmp_path / "prefixed" / "model.safetensors"))
    (tmp_path / "prefixed" / "config.json").write_text((tiny_base_dir / "config.json").read_text())
    assert torch.equal(
        _states(load_encoder(str(tmp_path / "prefixed")), batch),
        _states(load_encoder(str(tiny_base_dir)), batch),
    )


def test_other_position_embeddings_fall_back_to_transformers(tiny_base_dir, tmp_path):
    other = tmp_path / "relative"
    other.mkdir()
    config = json.loads((tiny_base_dir / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "position_embedding_type": "relative_key"}))
    (other / "model.safetensors").write_bytes((tiny_base_dir / "model.safetensors").read_bytes())
    assert not isinstance(load_encoder(str(other)), BertEncoder)


def test_trains(tiny_base_dir, batch):
    encoder = load_encoder(str(tiny_base_dir)).train()
    encoder(input_ids=batch[0], attention_mask=batch[1]).last_hidden_state.sum().backward()
    grads = {name for name, p in encoder.named_parameters() if p.grad is not None}
    assert (
        "embeddings.word_embeddings.weight" in grads
        and "encoder.layer.0.attention.self.query.weight" in grads
    )


def test_original_bert_names_load(tiny_base_dir, tmp_path, batch):
    """Google's BERT checkpoints call LayerNorm parameters gamma and beta, under a `bert.` prefix."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_base_dir / "model.safetensors"))
    renamed = {
        "bert."
        + k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
        for k, v in state.items()
    }
    (tmp_path / "old").mkdir()
    save_file(renamed, str(tmp_path / "old" / "model.safetensors"))
    (tmp_path / "old" / "config.json").write_text((tiny_base_dir / "config.json").read_text())
    assert torch.equal(
        _states(load_encoder(str(tmp_path / "old")), batch), _states(load_encoder(str(tiny_base_dir)), batch)
    )
