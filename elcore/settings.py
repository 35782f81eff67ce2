"""Settings read from the environment. No other module reads `os.environ`.

- `ELQ_CACHE_DIR`: where embeddings caches and the embedded default model live
  (default `~/.cache/elq`).
- `ELQ_DEVICE`: torch device for in-process work (default: `cuda` when available, else `cpu`).
- `ELQ_NUM_THREADS`: torch intra-op threads (default: torch's own choice).
- `ELQ_KIT_DIR`: the benchmark kit (default `../shared/kit` beside the checkout).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> str:
    return os.environ.get("ELQ_CACHE_DIR", str(Path.home() / ".cache" / "elq"))


def default_model_dir() -> str:
    """Where `elq build-default` writes the embedded default linker."""
    return os.environ.get("ELQ_DEFAULT_MODEL", str(Path(cache_dir()) / "default-linker"))


def kit_dir() -> Path:
    return Path(os.environ.get("ELQ_KIT_DIR", str(REPO_ROOT.parent / "shared" / "kit")))


def device() -> str:
    import torch

    return os.environ.get("ELQ_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def num_threads() -> int | None:
    value = os.environ.get("ELQ_NUM_THREADS")
    return int(value) if value else None


def hf_offline() -> None:
    """Nothing is downloaded from a model hub at run time: make transformers fail fast instead."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read when transformers is imported
    if "transformers" in sys.modules:  # already imported: tell it directly (linking never imports it)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
