"""The `elq` command, above both packages. Each sub-command parses options into a typed config and
calls one function of `elcore` (the library, which never imports this package) or of a Ray stage
(`stages.py`: those import Ray only when they run).
"""

from __future__ import annotations

import json
import logging

import typer

from elcore import settings

from .options import config_command, deferred

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="elq: end-to-end entity linking (ELQ).",
)
kb_app = typer.Typer(no_args_is_help=True, help="Knowledge base tools.")
app.add_typer(kb_app, name="kb")


def _register_commands() -> None:
    """The in-process commands (`commands.py`) and training: options from their configs, run deferred."""
    from elcore.default_model import DefaultBuildConfig, build_default_linker

    from . import commands
    from .train_job import TrainJob

    app.command("link")(config_command(commands.LinkCommand, commands.link))
    app.command("evaluate")(config_command(commands.EvaluateCommand, commands.evaluate))
    app.command("encode-entities")(config_command(commands.EncodeEntitiesCommand, commands.encode_entities))
    app.command("build-default")(config_command(DefaultBuildConfig, build_default_linker))
    app.command("train")(config_command(TrainJob, deferred("pipelines.train:run_job")))


_register_commands()


@app.command()
def recipes() -> None:
    """List the training recipes (`elq train --recipe NAME`)."""
    from elcore.recipes import RECIPES

    width = max(len(name) for name in RECIPES)
    for name, spec in RECIPES.items():
        typer.echo(f"{name:<{width}}  {spec.mirrors}: {spec.description}")


def _register_kb_build() -> None:
    from elcore.wikipedia.config import KbBuildConfig

    kb_app.command("build")(config_command(KbBuildConfig, deferred("pipelines.wikipedia:build")))


_register_kb_build()


@app.command()
def env() -> None:
    """Versions and settings, for bug reports."""
    import platform

    from elcore.model import library_versions

    info = {
        **library_versions(),
        "platform": platform.platform(),
        "cache_dir": settings.cache_dir(),
        "default_linker": settings.default_model_dir(),
        "device": settings.device(),
    }
    for name in ("faiss", "pyarrow", "ray"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = "not installed"
    typer.echo(json.dumps(info, indent=2))


def _register_pipelines() -> None:
    """The Ray stages' sub-commands (their modules import Ray only when a command runs)."""
    from .stages import register

    register(app)


_register_pipelines()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    settings.hf_offline()
    from elcore.errors import ElqError

    try:
        app()
    except (ElqError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
