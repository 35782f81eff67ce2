"""`InferenceOverrides`: the inference settings a linking job may change, one definition for every job.

`elq link`, `elq evaluate`, `elq link-corpus` (and `python -m pipelines.link_corpus`) take these options;
each maps them to `Linker.from_pretrained` arguments the same way. No torch here: `elq` builds its options
without loading it.

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
        use_priors: the fused score (dense + alias-table priors + learned head) when the linker has
            them; off = ELQ's dense score (default: on when it has them).
    """

    threshold: float | None = None
    top_k_mentions: int | None = None
    top_k_entities: int | None = None
    window: int | None = None
    stride: int | None = None
    use_priors: bool | None = None

    def config_values(self) -> dict[str, float | int | bool]:
        """The settings given, under their `Linker.from_pretrained` names (`ElqConfig` fields, and
        `use_priors`): `Linker.from_pretrained(model_dir, **values)`."""
        names = {"window": "max_context_length", "stride": "context_stride"}
        values = {names.get(f.name, f.name): getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: v for k, v in values.items() if v is not None}
