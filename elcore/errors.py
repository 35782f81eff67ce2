"""One error hierarchy for elq: catch `ElqError`, or the builtin a caller would expect."""

from __future__ import annotations


class ElqError(Exception):
    """Base class of every error elq raises on purpose."""


class ConfigError(ElqError, ValueError):
    """A configuration value is out of range or of the wrong kind."""


class InputRecordError(ElqError, ValueError):
    """A record of an input file is malformed.

    Args:
        source: file (or stream) the record came from.
        record: record id or 1-based line number.
        field: the offending field.
        reason: what is wrong and, where possible, what is allowed.
    """

    def __init__(self, source: str, record: str | int, field: str, reason: str) -> None:
        self.source, self.record, self.field, self.reason = source, record, field, reason
        super().__init__(f"{source}: record {record}: field {field!r}: {reason}")


class CatalogueNotFoundError(ElqError, FileNotFoundError):
    """The entity catalogue file does not exist."""


class ModelNotFoundError(ElqError, FileNotFoundError):
    """A model directory is missing or incomplete."""


class IndexMismatchError(ElqError, ValueError):
    """An index, embeddings file or catalogue do not belong together (sizes or fingerprints differ)."""


class EvaluationInputError(ElqError, ValueError):
    """Examples and predictions given to an evaluation do not line up (counts or fields differ)."""


class IndexNotFoundError(ElqError, FileNotFoundError):
    """An entity index directory is missing or incomplete (no `index.json`, or a shard file absent)."""


class EmbeddingsNotFoundError(ElqError, FileNotFoundError):
    """An embeddings directory is missing its `manifest.json` or a part file it lists."""
