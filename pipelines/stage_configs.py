"""The typed configs of the Ray stages: one dataclass per job, taken whole by `elq <stage>`,
`python -m pipelines.<stage>` and `ray job submit -- python -m pipelines.<stage>` (`options.config_command`
turns the fields into options). No Ray, torch or stage code here: `elq` builds its options from this module
alone, and each stage imports its config from it.

    >>> BuildIndexConfig(embeddings="emb/", output="index/", num_shards=4).validate().index.kind
    <IndexKind.FLAT: 'flat'>
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elcore import fs
from elcore.corpus import FORMATS
from elcore.embeddings import VectorDtype
from elcore.errors import ConfigError
from elcore.index import IndexSpec
from elcore.index_files import index_exists
from elcore.overrides import InferenceOverrides
from elcore.priors import PRIORS_FILE

from .common import ActorResources

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def ray_address() -> Any:
    """The `address` option every stage takes."""
    return field(default=None, metadata={"help": "Ray address ('auto': the `ray start` cluster)"})


def overwrite_other_job() -> Any:
    """The `overwrite` option of the stages that claim an output folder."""
    return field(default=False, metadata={"help": "replace output left by a different job"})


RETRIEVAL = ("local", "shards")


@dataclass
class EmbedEntitiesConfig:
    """Encode a catalogue's entities with a model's entity encoder into Parquet parts and a manifest."""

    catalogue: str = field(metadata={"help": "catalogue: jsonl(.gz) or Parquet file/folder, any fsspec URL"})
    model: str = field(metadata={"help": "model or linker directory (its entity encoder is used)"})
    output: str | None = field(
        default=None, metadata={"help": "embeddings folder (default: the cache for this model and catalogue)"}
    )
    dtype: str = field(default="float16", metadata={"help": "stored vector type: float16 or float32"})
    rows_per_part: int = field(
        default=10_000, metadata={"help": "entities per Parquet part (the resume unit)"}
    )
    batch_size: int = field(default=64, metadata={"help": "entities per encoder call (grouped by length)"})
    resources: ActorResources = field(default_factory=ActorResources)
    precision: str = field(
        default="auto", metadata={"help": "auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16"}
    )
    address: str | None = ray_address()
    overwrite: bool = overwrite_other_job()

    def validate(self) -> EmbedEntitiesConfig:
        VectorDtype.parse(self.dtype)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} not supported; use one of {list(PRECISIONS)}")
        for name in ("rows_per_part", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        return self


@dataclass
class BuildIndexConfig:
    """Build a sharded FAISS index over an embeddings folder: train once, one Ray task per shard."""

    embeddings: str = field(
        metadata={"help": "embeddings folder (manifest.json + Parquet parts), fsspec URL"}
    )
    output: str = field(metadata={"help": "index folder to write (index.json + shard files), fsspec URL"})
    index: IndexSpec = field(default_factory=IndexSpec)
    num_shards: int = field(default=1, metadata={"help": "shards by contiguous row range"})
    cpus_per_task: float = field(default=1.0, metadata={"help": "CPUs each train/build task asks Ray for"})
    address: str | None = ray_address()
    overwrite: bool = overwrite_other_job()

    def validate(self) -> BuildIndexConfig:
        if self.num_shards < 1 or self.cpus_per_task <= 0:
            raise ConfigError(
                f"num_shards must be >= 1 and cpus_per_task > 0, got {self.num_shards}, {self.cpus_per_task}"
            )
        return self


@dataclass
class LinkCorpusConfig:
    """Link every document of a collection; write links and a per-document status table as Parquet."""

    input: str = field(
        metadata={"help": "jsonl or Parquet file/folder, or a folder of .txt files; fsspec URL"}
    )
    output: str = field(metadata={"help": "output folder: links/, status/, summary.json"})
    model: str | None = field(
        default=None,
        metadata={
            "help": "linker directory (model + catalogue.parquet + index/ [+ priors]) or model directory; "
            "default: the embedded default (elq build-default)"
        },
    )
    catalogue: str | None = field(default=None, metadata={"help": "catalogue (default: the linker's own)"})
    index: str | None = field(
        default=None, metadata={"help": "index folder from build-index (default: the linker's)"}
    )
    format: str = field(default="auto", metadata={"help": "auto, jsonl, parquet or text"})
    id_field: str = field(default="id", metadata={"help": "document id field (default: the line/row number)"})
    text_field: str = field(default="text", metadata={"help": "document text field"})
    docs_per_part: int = field(default=256, metadata={"help": "documents per output part (the resume unit)"})
    retrieval: str = field(
        default="local",
        metadata={"help": "local: the index in each encoder actor; shards: one actor per shard"},
    )
    shard_cpus: float = field(
        default=0.5, metadata={"help": "CPUs each shard actor asks for (retrieval=shards)"}
    )
    batch_size: int = field(default=32, metadata={"help": "windows per encoder call"})
    inference: InferenceOverrides = field(default_factory=InferenceOverrides)
    resources: ActorResources = field(default_factory=ActorResources)
    address: str | None = ray_address()
    overwrite: bool = overwrite_other_job()

    def validate(self) -> LinkCorpusConfig:
        if not self.model:
            from elcore.linker import require_default_linker

            self.model = require_default_linker()
        if self.format not in ("auto", *FORMATS):
            raise ConfigError(f"format {self.format!r} not supported; use auto, {', '.join(FORMATS)}")
        if self.retrieval not in RETRIEVAL:
            raise ConfigError(f"retrieval {self.retrieval!r} not supported; use one of {list(RETRIEVAL)}")
        if self.inference.use_priors and not fs.exists(fs.join(self.model, PRIORS_FILE)):
            raise ConfigError(
                f"--use-priors: {self.model} holds no {PRIORS_FILE}; link with the dense score "
                "(--no-use-priors) or give a linker with priors"
            )
        if self.docs_per_part < 1 or self.batch_size < 1:
            raise ConfigError(
                f"docs_per_part and batch_size must be >= 1, got {self.docs_per_part}, {self.batch_size}"
            )
        return self

    def catalogue_url(self) -> str:
        url = self.catalogue or fs.join(self.model, "catalogue.parquet")
        if not fs.exists(url):
            raise ConfigError(
                f"no catalogue at {url}: pass --catalogue (the catalogue the index was built from)"
            )
        return url

    def index_url(self) -> str:
        url = self.index or fs.join(self.model, "index")
        if not index_exists(url):
            raise ConfigError(f"no index at {url}: pass --index (an index folder from build-index)")
        return url


@dataclass
class EvaluateCorpusConfig:
    """Strong/weak span and entity P/R/F1 of a link-corpus output against gold examples."""

    gold: str = field(
        metadata={"help": "gold examples jsonl (kit or ELQ format), the input link-corpus linked"}
    )
    links: str = field(metadata={"help": "link-corpus output folder (links/ and status/)"})
    catalogue: str | None = field(
        default=None, metadata={"help": "catalogue, to split the metrics by entities with/without text"}
    )
    output: str | None = field(default=None, metadata={"help": "report JSON to write (default: print only)"})
    address: str | None = ray_address()
