"""The Ray stages as `elq` sub-commands: `embed-entities`, `build-index`, `link-corpus`, `evaluate-corpus`.

Each command's options are the fields of the stage's config dataclass (`stage_configs`, through
`options.config_command`), so `elq <stage>` and `python -m pipelines.<stage>` take the same options; a
command builds the config and calls the stage's `run`, imported when the command runs.

    >>> app = typer.Typer(); register(app)
    >>> app(["build-index", "--embeddings", "emb/", "--output", "index/", "--kind", "hnsw"])
"""

from __future__ import annotations

import typer

from .options import config_command, deferred
from .stage_configs import BuildIndexConfig, EmbedEntitiesConfig, EvaluateCorpusConfig, LinkCorpusConfig

# command name -> (config class, the stage's run function as "module:name")
STAGES = {
    "embed-entities": (EmbedEntitiesConfig, "pipelines.embed_entities:run"),
    "build-index": (BuildIndexConfig, "pipelines.build_index:run"),
    "link-corpus": (LinkCorpusConfig, "pipelines.link_corpus:run"),
    "evaluate-corpus": (EvaluateCorpusConfig, "pipelines.evaluate:run"),
}


def register(app: typer.Typer) -> None:
    """Add the Ray stages to `app` as sub-commands."""
    for name, (config_cls, run) in STAGES.items():
        app.command(name)(config_command(config_cls, deferred(run)))
