"""The in-process `elq` commands as typed configs: `link`, `evaluate`, `encode-entities`, `build-default`.

Each is a dataclass whose fields are the command's options (`options.config_command`, the same way as the
Ray stages) and a function that takes it whole and calls `elcore`. No torch at import: `elq` builds its
options from these classes, and a command loads the linker only when it runs.

    >>> link(LinkCommand(text=["who wrote hamlet"]))          # prints one JSON line per text
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elcore.index import IndexSpec
from elcore.overrides import InferenceOverrides

if TYPE_CHECKING:
    from elcore.linker import Link, Linker


@dataclass
class LinkerChoice:
    """Which linker a command loads, and how.

    Args:
        model: linker or model directory (default: the embedded default).
        catalogue: catalogue (jsonl or Parquet); default: the linker's own.
        index: index directory; default: the linker's own, else exact search.
        batch_size: windows per encoder call.
    """

    model: str | None = field(default=None, metadata={"flags": ("-m",)})
    catalogue: str | None = None
    index: str | None = None
    batch_size: int = 32

    def load(self, overrides: InferenceOverrides, candidates: int = 0) -> Linker:
        from elcore.linker import Linker, require_default_linker

        return Linker.from_pretrained(
            self.model or require_default_linker(),
            catalogue=self.catalogue,
            index=self.index,
            batch_size=self.batch_size,
            num_candidates=candidates,
            **overrides.config_values(),
        )


@dataclass
class LinkCommand:
    """Link texts: arguments (JSON out), `-i` (interactive), or `--input/--output` jsonl files.

    Args:
        text: texts to link.
        interactive: read lines, print a table per line.
        input: jsonl of documents (one output line per input line: id, status, links, error).
        output: jsonl of links (with --input).
        id_field: document id field of --input (default: the line number).
        text_field: document text field of --input.
        candidates: alternative entities reported per link.
    """

    text: list[str] = field(default_factory=list, metadata={"argument": True})
    interactive: bool = field(default=False, metadata={"flags": ("-i",)})
    input: str | None = None
    output: str | None = None
    id_field: str = "id"
    text_field: str = "text"
    linker: LinkerChoice = field(default_factory=LinkerChoice)
    inference: InferenceOverrides = field(default_factory=InferenceOverrides)
    candidates: int = 0


def link(command: LinkCommand) -> dict[str, int] | None:
    """Run `elq link`; with --input, returns the counts (linked, no_links, failed)."""
    from elcore.errors import ConfigError

    if command.input:
        from elcore.corpus import check_output
        from elcore.data import require_jsonl_file

        if not command.output:
            raise ConfigError("--input needs --output")
        # Before loading anything: a bad input or an unwritable output must not cost a model load.
        require_jsonl_file(command.input, hint=" (a folder of documents is `elq link-corpus` input)")
        check_output(command.output)
    elif not command.text and not command.interactive:
        raise ConfigError("give texts, -i, or --input/--output")
    linker = command.linker.load(command.inference, command.candidates)
    if command.input:
        from elcore.corpus import link_jsonl

        return link_jsonl(
            linker,
            command.input,
            command.output,
            id_field=command.id_field,
            text_field=command.text_field,
            progress=True,
        )
    if command.interactive:
        print("elq interactive: type a sentence, empty line or Ctrl-D to quit.")
        for line in sys.stdin:
            if not line.strip():
                break
            print(link_table(linker.link([line.rstrip("\n")])[0]))
        return None
    for text, links in zip(command.text, linker.link(command.text), strict=True):
        print(json.dumps({"text": text, "links": [x.to_dict() for x in links]}, ensure_ascii=False))
    return None


def link_table(links: list[Link]) -> str:
    """One line per link: mention, title, QID (or id) and score."""
    if not links:
        return "  (no entities found)"
    width = max(len(x.mention) for x in links)
    return "\n".join(
        f"  {x.mention:<{width}}  ->  {x.title}  [{x.qid or x.entity_id}]  score {x.score:.2f}" for x in links
    )


@dataclass
class EvaluateCommand:
    """ELQ's weak/strong span metrics and entity-level P/R/F1 on gold files, with load and link time.

    Args:
        data: gold jsonl (kit or ELQ format); repeatable.
        output: report JSON (default: print only); with --sweep-thresholds also one PNG plot per file.
        sweep_thresholds: P/R/F1 per threshold, and the best one.
        limit: first N examples of each file.
    """

    data: list[str] = field(metadata={"required": True})
    output: str | None = None
    sweep_thresholds: bool = False
    limit: int | None = None
    linker: LinkerChoice = field(default_factory=LinkerChoice)
    inference: InferenceOverrides = field(default_factory=InferenceOverrides)


def evaluate(command: EvaluateCommand) -> None:
    """Run `elq evaluate`: a table, the error breakdown and timings per file; the report to --output."""
    from elcore import fs
    from elcore.data import read_examples
    from elcore.evaluation import default_thresholds, evaluate_linker
    from elcore.metrics import format_table, plot_sweep

    started = time.perf_counter()
    # 10 candidates per link tell a wrong entity with the gold among them from one not retrieved
    linker = command.linker.load(command.inference, candidates=10)
    load_seconds = time.perf_counter() - started
    reports = {}
    for url in command.data:
        examples = read_examples(url, limit=command.limit)
        sweep = default_thresholds(fused=linker.fused) if command.sweep_thresholds else None
        report = evaluate_linker(linker, examples, sweep=sweep)
        report["timing"]["load_seconds"] = round(load_seconds, 3)
        reports[url] = report
        print(f"== {url} ({len(examples)} examples, threshold {report['threshold']})")
        print(format_table(report["metrics"]))
        print("errors: " + ", ".join(f"{reason} {count}" for reason, count in report["errors"].items()))
        print(f"load {load_seconds:.1f}s, link {report['timing']['link_seconds']:.1f}s")
        if sweep is not None:
            print("threshold  strong_f1  weak_f1  entity_f1")
            for row in report["sweep"]:
                print(
                    f"{row['threshold']:9.2f}  {row['strong_f1']:9.3f}  {row['weak_f1']:7.3f}  {row['entity_f1']:9.3f}"
                )
            print(f"best threshold by {report['selected_by']}: {report['best_threshold']}")
            if command.output:
                stem = f"{command.output.rsplit('.', 1)[0]}-{Path(url).parent.name}-{Path(url).stem}"
                plot_sweep(report["sweep"], f"{stem}.png")
    if command.output:
        fs.write_json_atomic(command.output, reports)


@dataclass
class EncodeEntitiesCommand:
    """Encode a catalogue in this process (cached) and write a linker directory for it.

    Args:
        catalogue: catalogue jsonl or Parquet.
        output: linker directory to write (model + catalogue + index).
        model: model or linker directory whose entity encoder to use (default: the embedded default).
        batch_size: entities per encoder call.
    """

    catalogue: str
    output: str
    model: str | None = field(default=None, metadata={"flags": ("-m",)})
    index: IndexSpec = field(default_factory=IndexSpec)
    batch_size: int = 64


def encode_entities(command: EncodeEntitiesCommand) -> dict[str, Any]:
    from elcore.catalogue import EntityCatalogue
    from elcore.encoding import catalogue_vectors
    from elcore.index import build_index
    from elcore.linker import Linker, index_metadata, require_default_linker
    from elcore.model import ElqModel

    model = ElqModel.from_pretrained(command.model or require_default_linker())
    entities = EntityCatalogue.load(command.catalogue)
    vectors = catalogue_vectors(model, entities, batch_size=command.batch_size)
    index = build_index(vectors, command.index, index_metadata(model, entities))
    Linker(model, entities, index).save_pretrained(command.output)
    return {"entities": len(entities), "dim": int(vectors.shape[1]), "output": command.output}
