"""The Ray stages as `elq` sub-commands: `embed-entities`, `build-index`, `link-corpus`, `evaluate-corpus`.

Each command's options are the fields of the stage's config dataclass (`options.config_command`), so
`elq <stage>` and `python -m pipelines.<stage>` take the same options; a command builds the config and calls
the stage's `run`, which imports Ray only when it runs.

    >>> app = typer.Typer(); register(app)
    >>> app(["build-index", "--embeddings", "emb/", "--output", "index/", "--kind", "hnsw"])
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import typer

from .options import config_command

# command name -> (module, config class name)
STAGES = {
    "embed-entities": ("pipelines.embed_entities", "EmbedEntitiesConfig"),
    "build-index": ("pipelines.build_index", "BuildIndexConfig"),
    "link-corpus": ("pipelines.link_corpus", "LinkCorpusConfig"),
    "evaluate-corpus": ("pipelines.evaluate", "EvaluateCorpusConfig"),
}


def stage(name: str) -> tuple[type, Callable[[Any], dict]]:
    """The config class and `run` function of a stage."""
    module_name, config_name = STAGES[name]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), module.run


def register(app: typer.Typer) -> None:
    """Add the Ray stages to `app` as sub-commands."""
    for name in STAGES:
        config_cls, run = stage(name)
        app.command(name)(config_command(config_cls, run))
