"""The `elq` command, above both packages. Each sub-command parses options into a typed config and
calls one function of `elcore` (the library, which never imports this package) or of a Ray stage
(`stages.py`: those import Ray only when they run).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from elcore import settings
from elcore.overrides import InferenceOverrides

from .options import config_command, deferred, docstring_args

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="elq: end-to-end entity linking (ELQ).",
)
kb_app = typer.Typer(no_args_is_help=True, help="Knowledge base tools.")
app.add_typer(kb_app, name="kb")

_INFERENCE_HELP = docstring_args(InferenceOverrides)
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="linker or model directory (default: the embedded default)"),
]
CatalogueOpt = Annotated[
    str | None, typer.Option(help="catalogue (jsonl or Parquet); default: the linker's own")
]
IndexOpt = Annotated[str | None, typer.Option(help="index directory; default: the linker's own, else exact")]


UsePriorsOpt = Annotated[
    bool | None,
    typer.Option(
        "--use-priors/--no-use-priors",
        help="fused score (dense + alias-table priors + learned head) when the linker has them; "
        "--no-use-priors = ELQ's dense score",
    ),
]


def _linker(model, catalogue, index, batch_size=32, candidates=0, use_priors=None, **overrides):
    from elcore.linker import Linker, require_default_linker

    return Linker.from_pretrained(
        model or require_default_linker(),
        catalogue=catalogue,
        index=index,
        batch_size=batch_size,
        num_candidates=candidates,
        use_priors=use_priors,
        **overrides,
    )


def _print_table(links) -> None:
    if not links:
        typer.echo("  (no entities found)")
        return
    width = max(len(link.mention) for link in links)
    for link in links:
        typer.echo(
            f"  {link.mention:<{width}}  ->  {link.title}  [{link.qid or link.entity_id}]  score {link.score:.2f}"
        )


@app.command()
def link(
    text: Annotated[list[str] | None, typer.Argument(help="texts to link")] = None,
    interactive: Annotated[
        bool, typer.Option("-i", "--interactive", help="read lines, print a table")
    ] = False,
    input: Annotated[str | None, typer.Option("--input", help="jsonl of documents")] = None,
    output: Annotated[
        str | None, typer.Option("--output", help="jsonl of links, one line per input line")
    ] = None,
    id_field: str = "id",
    text_field: str = "text",
    model: ModelOpt = None,
    catalogue: CatalogueOpt = None,
    index: IndexOpt = None,
    threshold: Annotated[float | None, typer.Option(help=_INFERENCE_HELP["threshold"])] = None,
    use_priors: UsePriorsOpt = None,
    top_k_mentions: Annotated[int | None, typer.Option(help=_INFERENCE_HELP["top_k_mentions"])] = None,
    top_k_entities: Annotated[int | None, typer.Option(help=_INFERENCE_HELP["top_k_entities"])] = None,
    window: Annotated[int | None, typer.Option(help=_INFERENCE_HELP["window"])] = None,
    stride: Annotated[int | None, typer.Option(help=_INFERENCE_HELP["stride"])] = None,
    batch_size: int = 32,
    candidates: Annotated[int, typer.Option(help="alternative entities per link")] = 0,
) -> None:
    """Link texts: arguments (JSON out), `-i` (interactive), or `--input/--output` jsonl files."""
    if input:
        from elcore.corpus import check_output
        from elcore.data import require_jsonl_file

        if not output:
            raise typer.BadParameter("--input needs --output")
        # Before loading anything: a bad input or an unwritable output must not cost a model load.
        require_jsonl_file(input, hint=" (a folder of documents is `elq link-corpus` input)")
        check_output(output)
    overrides = InferenceOverrides(threshold, top_k_mentions, top_k_entities, window, stride)
    linker = _linker(model, catalogue, index, batch_size, candidates, use_priors, **overrides.config_values())
    if input:
        from elcore.corpus import link_jsonl

        counts = link_jsonl(linker, input, output, id_field=id_field, text_field=text_field, progress=True)
        typer.echo(json.dumps(counts), err=True)
        return
    if interactive:
        typer.echo("elq interactive: type a sentence, empty line or Ctrl-D to quit.")
        for line in sys.stdin:
            if not line.strip():
                break
            _print_table(linker.link([line.rstrip("\n")])[0])
        return
    if not text:
        raise typer.BadParameter("give texts, -i, or --input/--output")
    for t, links in zip(text, linker.link(text), strict=True):
        typer.echo(json.dumps({"text": t, "links": [link.to_dict() for link in links]}, ensure_ascii=False))


@app.command()
def evaluate(
    data: Annotated[list[str], typer.Option(help="gold jsonl (kit or ELQ format); repeatable")],
    model: ModelOpt = None,
    catalogue: CatalogueOpt = None,
    index: IndexOpt = None,
    output: Annotated[str | None, typer.Option(help="report JSON (default: print only)")] = None,
    sweep_thresholds: Annotated[
        bool, typer.Option(help="P/R/F1 per threshold, a PNG plot and the best")
    ] = False,
    threshold: float | None = None,
    use_priors: UsePriorsOpt = None,
    batch_size: int = 32,
    limit: Annotated[int | None, typer.Option(help="first N examples of each file")] = None,
) -> None:
    """ELQ's weak/strong span metrics and entity-level P/R/F1, with load and link time."""
    import time

    from elcore import fs
    from elcore.data import read_examples
    from elcore.evaluation import default_thresholds, evaluate_linker
    from elcore.metrics import format_table, plot_sweep

    started = time.perf_counter()
    # 10 candidates per link tell a wrong entity with the gold among them from one not retrieved
    linker = _linker(model, catalogue, index, batch_size, 10, use_priors, threshold=threshold)
    load_seconds = time.perf_counter() - started
    reports = {}
    for url in data:
        examples = read_examples(url, limit=limit)
        sweep = default_thresholds(fused=linker.fused) if sweep_thresholds else None
        report = evaluate_linker(linker, examples, sweep=sweep)
        report["timing"]["load_seconds"] = round(load_seconds, 3)
        reports[url] = report
        typer.echo(f"== {url} ({len(examples)} examples, threshold {report['threshold']})")
        typer.echo(format_table(report["metrics"]))
        typer.echo("errors: " + ", ".join(f"{reason} {count}" for reason, count in report["errors"].items()))
        typer.echo(f"load {load_seconds:.1f}s, link {report['timing']['link_seconds']:.1f}s")
        if sweep_thresholds:
            typer.echo("threshold  strong_f1  weak_f1  entity_f1")
            for row in report["sweep"]:
                typer.echo(
                    f"{row['threshold']:9.2f}  {row['strong_f1']:9.3f}  {row['weak_f1']:7.3f}  {row['entity_f1']:9.3f}"
                )
            typer.echo(f"best threshold by {report['selected_by']}: {report['best_threshold']}")
            if output:
                plot_sweep(
                    report["sweep"],
                    f"{output.rsplit('.', 1)[0]}-{Path(url).parent.name}-{Path(url).stem}.png",
                )
    if output:
        fs.write_json_atomic(output, reports)


@app.command("encode-entities")
def encode_entities(
    catalogue: Annotated[str, typer.Option(help="catalogue jsonl or Parquet")],
    output: Annotated[str, typer.Option(help="linker directory to write (model + catalogue + index)")],
    model: ModelOpt = None,
    index_type: Annotated[
        str,
        typer.Option(help="flat, flat-fp16, sq8, hnsw, ivfpq, compact, gpu-flat or a faiss factory string"),
    ] = "flat",
    batch_size: int = 64,
) -> None:
    """Encode a catalogue in-process (cached) and write a linker directory for it."""
    from elcore.catalogue import EntityCatalogue
    from elcore.encoding import catalogue_vectors
    from elcore.index import IndexSpec, build_index
    from elcore.linker import Linker, index_metadata, require_default_linker
    from elcore.model import ElqModel

    elq_model = ElqModel.from_pretrained(model or require_default_linker())
    entities = EntityCatalogue.load(catalogue)
    vectors = catalogue_vectors(elq_model, entities, batch_size=batch_size)
    index = build_index(vectors, IndexSpec(kind=index_type), index_metadata(elq_model, entities))
    Linker(elq_model, entities, index).save_pretrained(output)
    typer.echo(json.dumps({"entities": len(entities), "dim": vectors.shape[1], "output": output}))


def _register_train() -> None:
    from .train_job import TrainJob

    app.command("train")(config_command(TrainJob, deferred("pipelines.train:run_job")))


_register_train()


@app.command()
def recipes() -> None:
    """List the training recipes (`elq train --recipe NAME`)."""
    from elcore.recipes import RECIPES

    width = max(len(name) for name in RECIPES)
    for name, spec in RECIPES.items():
        typer.echo(f"{name:<{width}}  {spec.mirrors}: {spec.description}")


@app.command("build-default")
def build_default(
    output: Annotated[str | None, typer.Option(help="where to write the linker")] = None,
    max_entities: int | None = None,
    max_train_examples: int = 4000,
    epochs: int = 1,
) -> None:
    """Build the embedded default linker (MiniLM + ~10k Wikipedia vital articles; ~10 min on 2 cores)."""
    from elcore.default_model import DefaultBuildConfig, build_default_linker

    config = DefaultBuildConfig(
        max_entities=max_entities, max_train_examples=max_train_examples, epochs=epochs
    )
    if output:
        config.output_dir = output
    typer.echo(json.dumps(build_default_linker(config), indent=2))


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
