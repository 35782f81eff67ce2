"""A checkpoint's fast (Rust) tokenizer, used through `tokenizers` without transformers' Python layer.

transformers' `AutoTokenizer` wraps the same Rust tokenizer; importing it costs ~0.8 s, a fifth
of linking one sentence from the shell. `WordpieceTokenizer` loads `tokenizer.json` directly and
does the two things elq asks of a tokenizer: texts -> ids with character offsets and word
starts (no special tokens), and `(title, text)` pairs -> "[CLS] title [SEP] text [SEP]" cut
longest-first and padded. A checkpoint without `tokenizer.json` (only `vocab.txt`) goes through
`AutoTokenizer` once, which builds the same Rust tokenizer. Saved as transformers saves it, so
`AutoTokenizer` still reads a saved model.

    >>> tokenizer = WordpieceTokenizer.load("runs/linker/tokenizer")
    >>> tokenizer.encode_texts(["who is betty white?"])[0].offsets[:2]
    [(0, 3), (4, 6)]
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence

import torch
from tokenizers import Encoding, Tokenizer

from .errors import ConfigError

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL = ("cls_token", "sep_token", "pad_token")
TOKENIZER_FILES = (TOKENIZER_FILE, CONFIG_FILE, "special_tokens_map.json", "vocab.txt", "added_tokens.json")


class WordpieceTokenizer:
    """The Rust tokenizer and the special tokens elq uses ([CLS], [SEP], [PAD] by default)."""

    def __init__(self, tokenizer: Tokenizer, config: dict, source: str | None = None) -> None:
        self._texts = Tokenizer.from_str(tokenizer.to_str())
        self._texts.no_truncation()
        self._texts.no_padding()
        self._pairs = Tokenizer.from_str(tokenizer.to_str())
        self.config, self.source = dict(config), source
        defaults = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]"}
        ids = {}
        for name in SPECIAL:
            token = _token_text(config.get(name)) or defaults[name]
            ids[name] = tokenizer.token_to_id(token)
            if ids[name] is None:
                raise ConfigError(f"tokenizer has no {name} {token!r}")
        self.cls_token_id, self.sep_token_id, self.pad_token_id = (ids[n] for n in SPECIAL)
        self._pad_token = _token_text(config.get("pad_token")) or defaults["pad_token"]

    @classmethod
    def load(cls, path: str) -> WordpieceTokenizer:
        """The tokenizer saved in directory `path` (or a base checkpoint's)."""
        config_path = os.path.join(path, CONFIG_FILE)
        config = {}
        if os.path.exists(config_path):
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
        if os.path.exists(os.path.join(path, TOKENIZER_FILE)):
            return cls(Tokenizer.from_file(os.path.join(path, TOKENIZER_FILE)), config, path)
        from transformers import AutoTokenizer  # vocab.txt only: transformers builds the Rust tokenizer

        loaded = AutoTokenizer.from_pretrained(path)
        if not hasattr(loaded, "backend_tokenizer"):
            raise ConfigError(f"{path}: elq needs a fast (Rust) tokenizer for character offsets")
        special = {name: getattr(loaded, name) for name in SPECIAL}
        return cls(loaded.backend_tokenizer, {**config, **special}, None)

    def __len__(self) -> int:
        return self._texts.get_vocab_size(with_added_tokens=True)

    def encode_texts(self, texts: Sequence[str]) -> list[Encoding]:
        """Each text's wordpieces without special tokens (ids, character offsets, word ids)."""
        return self._texts.encode_batch(list(texts), add_special_tokens=False)

    def encode_pairs(
        self, first: Sequence[str], second: Sequence[str], max_length: int
    ) -> dict[str, torch.Tensor]:
        """`input_ids` and `attention_mask` `[B, L]` of "[CLS] a [SEP] b [SEP]", the longer part cut
        first to `max_length`, padded to the longest."""
        self._pairs.enable_truncation(max_length, strategy="longest_first")
        self._pairs.enable_padding(pad_id=self.pad_token_id, pad_token=self._pad_token)
        encoded = self._pairs.encode_batch(list(zip(first, second, strict=True)))
        return {
            "input_ids": torch.tensor([e.ids for e in encoded], dtype=torch.long),
            "attention_mask": torch.tensor([e.attention_mask for e in encoded], dtype=torch.long),
        }

    def save_pretrained(self, path: str) -> None:
        """Write `tokenizer.json` and `tokenizer_config.json` (the files `AutoTokenizer` reads)."""
        os.makedirs(path, exist_ok=True)
        if self.source and os.path.exists(os.path.join(self.source, TOKENIZER_FILE)):
            for name in TOKENIZER_FILES:  # as they came (a base checkpoint's folder holds its weights too)
                source, target = os.path.join(self.source, name), os.path.join(path, name)
                if os.path.exists(source) and not (
                    os.path.exists(target) and os.path.samefile(source, target)
                ):
                    shutil.copyfile(source, target)
            return
        self._texts.save(os.path.join(path, TOKENIZER_FILE))
        config = {"tokenizer_class": "BertTokenizer", **self.config}
        with open(os.path.join(path, CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, sort_keys=True, default=str)


def _token_text(value: object) -> str | None:
    """A special token from a config: a string, or an AddedToken-like `{"content": ...}`."""
    if isinstance(value, dict):
        return value.get("content")
    return str(value) if value is not None else None
