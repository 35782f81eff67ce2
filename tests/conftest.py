"""Shared fixtures: a tiny random BERT written once per session, a small catalogue, the kit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from elcore import settings

WORDS = """
the a an of in on at to is was who what where when which how are did does do and or for with by from
paris france berlin germany london england city capital country river president king queen born
betty white actress husband husbands married film director stanley kubrick space odyssey music
albert einstein physicist relativity theory apple fruit company computer iphone steve jobs new york
barack obama united states america amazon forest jaguar car animal play played plays team football
""".split()


def write_tiny_base(path: Path) -> Path:
    """A randomly initialised 2-layer BERT with a small uncased WordPiece vocabulary."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,?!'-:;()\"")
    pieces = ["##" + c for c in letters] + ["##s", "##es", "##ed", "##ing"]
    vocab = list(dict.fromkeys(specials + letters + WORDS + pieces))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # Built by `tokenizers` from the vocabulary (transformers 5's BertTokenizerFast(vocab_file=...)
    # ignores the file and keeps only the special tokens, so every word would be [UNK]).
    wordpiece = BertWordPieceTokenizer(str(path / "vocab.txt"), lowercase=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece._tokenizer,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
    )
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Point every cache at a temp dir, never at the user's ~/.cache/elq."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ELQ_CACHE_DIR", str(tmp_path_factory.mktemp("elq-cache")))
    mp.setenv("ELQ_DEVICE", "cpu")
    settings.hf_offline()
    torch.set_num_threads(1)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory) -> Path:
    return write_tiny_base(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture()
def tiny_model(tiny_base_dir):
    from elcore.model import ElqModel

    torch.manual_seed(0)
    model = ElqModel.from_base(str(tiny_base_dir), max_context_length=32, context_stride=12)
    model.head_trained = True  # the tests link with a random head on purpose: no warning wanted
    return model


ENTITY_RECORDS = [
    {
        "id": "Q90",
        "qid": "Q90",
        "title": "Paris",
        "text": "capital city of france",
        "aliases": ["city of light"],
    },
    {"id": "Q142", "qid": "Q142", "title": "France", "text": "country in europe", "aliases": []},
    {"id": "Q64", "qid": "Q64", "title": "Berlin", "text": "capital of germany", "aliases": []},
    {"id": "Q183", "qid": "Q183", "title": "Germany", "text": "country", "aliases": []},
    {"id": "Q84", "qid": "Q84", "title": "London", "text": "capital of england", "aliases": []},
    {"id": "Q373895", "qid": "Q373895", "title": "Betty White", "text": "actress", "aliases": []},
    {"id": "Q2001", "qid": "Q2001", "title": "Stanley Kubrick", "text": "film director", "aliases": []},
    {"id": "Q937", "qid": "Q937", "title": "Albert Einstein", "text": "physicist", "aliases": []},
    {
        "id": "Q76",
        "qid": "Q76",
        "title": "Barack Obama",
        "text": "president of the united states",
        "aliases": [],
    },
    {"id": "enwiki:jaguar", "qid": None, "title": "Jaguar", "text": "animal", "aliases": []},
]


@pytest.fixture()
def small_catalogue():
    from elcore.catalogue import EntityCatalogue

    return EntityCatalogue.from_records(ENTITY_RECORDS)


@pytest.fixture()
def tiny_linker(tiny_model, small_catalogue):
    """The random tiny model over the small catalogue, exact index; a very low threshold so that links
    exist at all."""
    from elcore.encoding import encode_entities
    from elcore.index import FaissIndex, IndexSpec
    from elcore.linker import Linker

    tiny_model.config = tiny_model.config.replace(threshold=-50.0)
    vectors = encode_entities(
        tiny_model, small_catalogue.entity_inputs(range(len(small_catalogue))), progress=False
    )
    return Linker(tiny_model, small_catalogue, FaissIndex.build(vectors, IndexSpec()), num_candidates=3)


@pytest.fixture(scope="session")
def kit_dir() -> Path:
    path = settings.kit_dir()
    if not (path / "catalogue" / "entities.jsonl").exists():
        pytest.skip(f"benchmark kit not found at {path} (set ELQ_KIT_DIR)")
    return path


def copy_dir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
