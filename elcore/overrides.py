"""`InferenceOverrides`: the inference settings a linking job may change, one definition for every job.

`elq link`, `elq link-corpus` (and `python -m pipelines.link_corpus`) take these options; each maps
them to `ElqConfig` names the same way. No torch here: `elq` builds its options without loading it.

    >>> InferenceOverrides(window=256).config_values()
    {'max_context_length': 256}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class InferenceOverrides:
    """Inference settings a linking job may change (None: the model's own).

    Args:
        threshold: link score threshold (default: the linker's tuned one).
        top_k_mentions: spans kept per window by mention score.
        top_k_entities: entities retrieved per span.
        window: wordpieces per window (<= 512).
        stride: wordpieces between window starts.
    """

    threshold: float | None = None
    top_k_mentions: int | None = None
    top_k_entities: int | None = None
    window: int | None = None
    stride: int | None = None

    def config_values(self) -> dict[str, float | int]:
        """The settings given, under their `ElqConfig` names (for `Linker.from_pretrained(**values)`)."""
        names = {"window": "max_context_length", "stride": "context_stride"}
        values = {names.get(f.name, f.name): getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: v for k, v in values.items() if v is not None}
