"""The Ray stages end to end on a local Ray: embed -> index (2 shards) -> link a small corpus -> evaluate.

Every result is compared with the in-process elcore path on the same inputs. One Ray instance per module;
actors ask for a quarter CPU each so everything fits 2 CPUs. A `file://` URL stands in for object storage
(Ray workers are separate processes, so `memory://` would not be shared with them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elcore import fs
from elcore.errors import ConfigError
from elcore.index import IndexSpec
from pipelines.common import ActorResources
from tests.conftest import WORDS
from tests.killing import kill_after_parts

pytestmark = [pytest.mark.ray]

NUM_ENTITIES = 300
SMALL = {"resources": ActorResources(num_actors=1, cpus_per_actor=0.25, torch_threads=1)}


@pytest.fixture(scope="module")
def ray_local():
    import ray

    mp = pytest.MonkeyPatch()
    mp.delenv("RAY_ADDRESS", raising=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    mp.undo()


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_base_dir):
    """A tiny model saved to disk, a catalogue of a few hundred synthetic entities, a corpus with bad rows."""
    import torch

    from elcore.catalogue import EntityCatalogue
    from elcore.model import ElqModel

    root = tmp_path_factory.mktemp("pipelines")
    torch.manual_seed(0)
    model = ElqModel.from_base(
        str(tiny_base_dir), max_context_length=32, context_stride=12, threshold=-3.5, entity_pooling="mean"
    )
    model.head_trained = True  # a random head on purpose: the stages must equal the in-process linker
    model.save_pretrained(str(root / "model"))
    rng = random.Random(0)
    records = []
    for i in range(NUM_ENTITIES):
        title = " ".join(rng.sample(WORDS, rng.randint(1, 3)))
        text = " ".join(rng.choices(WORDS, k=rng.randint(0, 12)))
        records.append(
            {"id": f"E{i}", "qid": f"Q{i}" if i % 7 else None, "title": title, "text": text, "aliases": []}
        )
    (root / "entities.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    _fit_hybrid_into(root / "model", model, root / "entities.jsonl", records, root / "train.jsonl")
    docs = [{"id": f"d{i}", "text": " ".join(rng.choices(WORDS, k=rng.randint(3, 45)))} for i in range(24)]
    docs[5]["text"] = ""  # an empty document: no links, not a failure
    lines = [json.dumps(d) for d in docs]
    lines.insert(7, '{"id": "broken", "text": ')  # malformed JSON
    lines.insert(12, json.dumps({"id": "numeric", "text": 42}))  # text of the wrong type
    lines.insert(15, json.dumps({"id": "no-text"}))  # text missing
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text("\n".join(lines[:20]) + "\n")
    (corpus / "b.jsonl").write_text("\n".join(lines[20:]) + "\n")
    return {
        "root": root,
        "model": str(root / "model"),
        "catalogue_url": str(root / "entities.jsonl"),
        "catalogue": EntityCatalogue.from_records(records),
        "docs": docs,
        "corpus": "file://" + str(corpus),
        "input_lines": len(lines),
    }


@pytest.fixture(scope="module")
def embedded(ray_local, work):
    from pipelines.embed_entities import EmbedEntitiesConfig, run

    config = EmbedEntitiesConfig(
        catalogue=work["catalogue_url"],
        model=work["model"],
        output="file://" + str(work["root"] / "emb"),
        rows_per_part=64,
        batch_size=16,
        **SMALL,
    )
    return config, run(config)


def _fit_hybrid_into(model_dir, model, catalogue_url, records, train_url) -> None:
    """Priors and a fusion head in the model directory, so every stage links with the fused score."""
    from elcore.catalogue import EntityCatalogue
    from elcore.encoding import encode_entities
    from elcore.fusion import FusionConfig
    from elcore.hybrid import HybridConfig, fit_hybrid
    from elcore.index import FaissIndex
    from elcore.linker import Linker

    lines = []
    for i, r in enumerate(records[:60]):
        text = f"who is {r['title']} in paris"
        lines.append(
            {"id": f"t{i}", "text": text, "mentions": [[7, 7 + len(r["title"])]], "wikidata_id": [r["id"]]}
        )
    train_url.write_text("".join(json.dumps(x) + "\n" for x in lines))
    catalogue = EntityCatalogue.load(str(catalogue_url))
    vectors = encode_entities(model, catalogue.entity_inputs(range(len(catalogue))), progress=False)
    linker = Linker(model, catalogue, FaissIndex.build(vectors))
    config = HybridConfig(
        prior_data=[str(train_url)],
        head_data=[(str(train_url), 0, "complete")],
        fusion=FusionConfig(hidden_size=4),
        epochs=3,
    )
    fit_hybrid(linker, config)
    linker.threshold = -4.0
    linker.priors.save(str(model_dir / "priors.parquet"))
    linker.fusion.save(str(model_dir / "fusion"))


@pytest.fixture(scope="module")
def index_url(embedded, work):
    from pipelines.build_index import BuildIndexConfig, run

    url = "file://" + str(work["root"] / "index")
    run(
        BuildIndexConfig(
            embeddings=embedded[0].output,
            output=url,
            index=IndexSpec("flat"),
            num_shards=2,
            cpus_per_task=0.5,
        )
    )
    return url


@pytest.fixture(scope="module")
def reference(work, index_url):
    """The in-process linker on the same model, catalogue and index: what every Ray output must equal."""
    from elcore.linker import Linker

    linker = Linker.from_pretrained(work["model"], catalogue=work["catalogue"], index=index_url, device="cpu")
    assert (
        linker.fused
    )  # the Ray stages are checked with the fused score (dense is the same path less the head)
    return linker


@pytest.fixture(scope="module")
def linked(work, index_url):
    from pipelines.link_corpus import LinkCorpusConfig, run

    config = LinkCorpusConfig(
        input=work["corpus"],
        output="file://" + str(work["root"] / "links"),
        model=work["model"],
        catalogue=work["catalogue_url"],
        index=index_url,
        docs_per_part=8,
        **SMALL,
    )
    return config, run(config)


# -- embed-entities ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(180)  # builds the module's fixtures: Ray, the model, the embeddings
def test_embed_entities_matches_in_process_encoder(embedded, work):
    from elcore.embeddings import read_embeddings
    from elcore.encoding import encode_entities
    from elcore.model import ElqModel

    config, summary = embedded
    assert summary["count"] == NUM_ENTITIES and summary["parts"] == 5 and summary["parts_written"] == 5
    vectors, manifest = read_embeddings(config.output)
    model = ElqModel.from_pretrained(work["model"])
    catalogue = work["catalogue"]
    expected = encode_entities(model, catalogue.entity_inputs(np.arange(len(catalogue))), progress=False)
    np.testing.assert_allclose(vectors, expected.astype(np.float16).astype(np.float32), atol=1e-6)
    assert manifest.model_fingerprint == model.entity_fingerprint()
    assert manifest.catalogue_fingerprint == catalogue.fingerprint
    assert (manifest.dim, manifest.dtype, manifest.count) == (32, "float16", NUM_ENTITIES)
    # plain pyarrow, no Ray and no elcore, reads a part
    table = pq.read_table(str(work["root"] / "emb" / manifest.parts[1]))
    assert table.column_names == ["row", "id", "qid", "vector"]
    assert table.schema.field("vector").type == pa.list_(pa.float16(), 32)
    assert table.column("row").to_pylist()[0] == 64 and table.column("id").to_pylist()[0] == "E64"


@pytest.mark.timeout(120)
def test_embed_entities_rerun_rewrites_missing_and_damaged_parts_only(embedded, work):
    from elcore.embeddings import read_embeddings
    from pipelines.embed_entities import run

    config, _ = embedded
    before, _ = read_embeddings(config.output)
    assert run(config)["parts_skipped"] == 5
    (work["root"] / "emb" / "vectors" / "part-00002.parquet").unlink()
    cut = work["root"] / "emb" / "vectors" / "part-00004.parquet"
    cut.write_bytes(cut.read_bytes()[:100])
    again = run(config)
    assert (again["parts_written"], again["parts_skipped"]) == (2, 3)
    np.testing.assert_array_equal(read_embeddings(config.output)[0], before)
    with pytest.raises(ConfigError, match="different job"):
        run(dataclasses.replace(config, rows_per_part=100))


# -- build-index ------------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_build_index_flat_shards_search_exactly(embedded, index_url):
    from elcore.embeddings import read_embeddings
    from elcore.index import ShardedIndex, exact_search, load_index

    vectors, _ = read_embeddings(embedded[0].output)
    index = load_index(index_url)
    assert isinstance(index, ShardedIndex) and index.ranges == [(0, 150), (150, 300)]
    queries = np.random.default_rng(1).standard_normal((20, 32)).astype(np.float32)
    found, truth = index.search(queries, 10), exact_search(vectors, queries, 10)
    # the same top-10 scores, each the true score of the id returned (ids may swap only within a tie)
    np.testing.assert_allclose(found.scores, truth.scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        np.einsum("qkd,qd->qk", vectors[found.ids], queries), found.scores, rtol=1e-5, atol=1e-5
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["ivfpq", "sq8", "compact"])
def test_build_index_trained_shards_equal_elcore(embedded, work, kind):
    """Trained once on the same seeded sample and filled by row range: the same index elcore builds."""
    from elcore.embeddings import read_embeddings
    from elcore.index import ShardedIndex, load_index
    from pipelines.build_index import BuildIndexConfig, run

    vectors, _ = read_embeddings(embedded[0].output)
    config = BuildIndexConfig(
        embeddings=embedded[0].output,
        output=str(work["root"] / f"index-{kind}"),
        index=IndexSpec(kind, train_size=200),
        num_shards=2,
        cpus_per_task=0.5,
    )
    summary = run(config)
    assert summary["shards_built"] == 2 and summary["bytes_per_entity"] > 0
    expected = ShardedIndex.build(vectors, config.index, num_shards=2)
    queries = np.random.default_rng(2).standard_normal((20, 32)).astype(np.float32)
    found, want = load_index(config.output).search(queries, 5), expected.search(queries, 5)
    np.testing.assert_array_equal(found.ids, want.ids)
    np.testing.assert_allclose(found.scores, want.scores, rtol=1e-6)
    assert run(config)["shards_skipped"] == 2
    cut = work["root"] / f"index-{kind}" / "shard-00001.faiss"
    cut.write_bytes(cut.read_bytes()[:-7])  # a damaged shard is built again, never loaded
    assert (run(config)["shards_built"], load_index(config.output).search(queries, 5).ids.tolist()) == (
        1,
        want.ids.tolist(),
    )


# -- link-corpus ------------------------------------------------------------------------------------------------


def expected_links(reference, docs):
    return {
        d["id"]: [(k.start, k.end, k.entity_id, k.qid, k.title, k.mention) for k in links]
        for d, links in zip(docs, reference.link([d["text"] for d in docs]), strict=True)
    }


def links_by_doc(table):
    out = {}
    for row in table.to_pylist():
        out.setdefault(row["doc_id"], []).append(
            (row["start"], row["end"], row["entity_id"], row["qid"], row["title"], row["mention"])
        )
    return out


@pytest.mark.timeout(120)
def test_link_corpus_matches_in_process_linker(linked, work, reference):
    from pipelines.corpus_output import read_output

    config, summary = linked
    links, status = read_output(config.output, "links"), read_output(config.output, "status")
    # every input row has exactly one status row; the bad ones fail with the reason
    assert summary["docs"] == status.num_rows == work["input_lines"]
    assert (
        len(set(zip(status.column("source").to_pylist(), status.column("line").to_pylist(), strict=True)))
        == status.num_rows
    )
    by_id = {r["doc_id"]: r for r in status.to_pylist()}
    assert by_id["d5"]["status"] == "no_links" and by_id["d5"]["error"] is None
    assert by_id["numeric"]["status"] == "failed" and "'text'" in by_id["numeric"]["error"]
    assert by_id["no-text"]["status"] == "failed" and "missing" in by_id["no-text"]["error"]
    broken = [r for r in status.to_pylist() if r["status"] == "failed" and "JSON" in (r["error"] or "")]
    assert len(broken) == 1 and broken[0]["line"] == 8
    assert summary["failed"] == 3 and summary["linked"] + summary["no_links"] == len(work["docs"])
    # the links equal the single-process linker's
    expected = expected_links(reference, work["docs"])
    assert summary["links"] > 0 and links_by_doc(links) == {k: v for k, v in expected.items() if v}
    scores = {(r["doc_id"], r["start"], r["end"]): r["score"] for r in links.to_pylist()}
    for doc, doc_links in zip(work["docs"], reference.link([d["text"] for d in work["docs"]]), strict=True):
        for link in doc_links:
            assert scores[(doc["id"], link.start, link.end)] == pytest.approx(link.score, abs=1e-5)
    assert set(links.column("window").to_pylist()) >= {0, 1}  # long documents span several windows


@pytest.mark.timeout(120)
def test_link_corpus_with_shard_actors_gives_the_same_links(linked, work):
    from pipelines.corpus_output import read_output
    from pipelines.link_corpus import run

    config, _ = linked
    shards = dataclasses.replace(
        config, output=str(work["root"] / "links-shards"), retrieval="shards", shard_cpus=0.25
    )
    summary = run(shards)
    assert summary["retrieval"] == "shards"
    for table in ("links", "status"):
        assert read_output(shards.output, table).equals(read_output(config.output, table))


@pytest.mark.timeout(120)
def test_link_corpus_rerun_rewrites_missing_and_truncated_parts_only(linked, work):
    from pipelines.corpus_output import read_output
    from pipelines.link_corpus import run

    config, first = linked
    links, status = read_output(config.output, "links"), read_output(config.output, "status")
    out = work["root"] / "links"
    # a part whose status was not written (the job died there), and a part whose links file was cut to half
    (out / "status" / "part-00001-00000.parquet").unlink()
    cut = out / "links" / "part-00000-00001.parquet"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    resumed = run(config)
    assert (resumed["parts"], resumed["parts_skipped"], resumed["docs_this_run"]) == (
        first["parts"],
        first["parts"] - 2,
        7 + 8,  # b.jsonl (7 lines, one part) and the second part of a.jsonl
    )
    # summary.json is the whole output's, not this run's
    assert {k: resumed[k] for k in ("docs", "links", "linked", "no_links", "failed")} == {
        k: first[k] for k in ("docs", "links", "linked", "no_links", "failed")
    }
    assert json.loads((out / "summary.json").read_text())["docs"] == first["docs"]
    assert 0 < resumed["seconds_to_first_part"] <= resumed["seconds"]
    assert read_output(config.output, "links").equals(links)
    assert read_output(config.output, "status").equals(status)


@pytest.mark.timeout(300)  # the module's fixtures (Ray, the model, the index) when run alone
def test_link_corpus_takes_new_input_files_and_refuses_changed_ones(linked, work):
    from elcore.errors import ConfigError
    from pipelines.corpus_output import read_output
    from pipelines.link_corpus import run

    config, full = linked
    corpus = work["root"] / "growing"
    corpus.mkdir()
    shutil.copy(work["root"] / "corpus" / "a.jsonl", corpus / "a.jsonl")
    growing = dataclasses.replace(config, input=str(corpus), output=str(work["root"] / "links-growing"))
    first = run(growing)
    shutil.copy(work["root"] / "corpus" / "b.jsonl", corpus / "b.jsonl")  # a file added to a finished job
    second = run(growing)
    assert (second["parts_skipped"], second["docs_this_run"], second["docs"]) == (
        first["parts"],
        7,
        full["docs"],
    )
    for table, paths in (("links", ["source"]), ("status", ["source", "error"])):  # these name the folder
        got, want = read_output(growing.output, table), read_output(config.output, table)
        assert got.drop_columns(paths).equals(want.drop_columns(paths))
    with open(corpus / "a.jsonl", "a") as f:
        f.write(json.dumps({"id": "late", "text": "paris"}) + "\n")
    with pytest.raises(ConfigError, match="a.jsonl changed since this job linked it"):
        run(growing)


SMALL_FLAGS = ["--num-actors", "1", "--cpus-per-actor", "0.25", "--torch-threads", "1"]


@pytest.mark.timeout(300)
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts the driver's processes in /proc")
def test_a_killed_link_corpus_driver_leaves_no_process_and_resumes_exactly(work, index_url, reference):
    """SIGKILL the driver after its first parts; every process it started goes, and a re-run ends with
    every input row once and the uninterrupted links."""
    from pipelines.corpus_output import read_output

    rng = random.Random(3)
    docs = [{"id": f"k{i}", "text": " ".join(rng.choices(WORDS, k=rng.randint(3, 30)))} for i in range(240)]
    corpus, out = work["root"] / "kill-corpus", work["root"] / "links-killed"
    corpus.mkdir()
    (corpus / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    command = [sys.executable, "-m", "pipelines.link_corpus", "--input", str(corpus), "--output", str(out)]
    command += ["--model", work["model"], "--catalogue", work["catalogue_url"], "--index", index_url]
    kill_after_parts([*command, "--docs-per-part", "10", *SMALL_FLAGS], out, parts=2, of=24)
    status = read_output(str(out), "status")
    assert sorted(status.column("doc_id").to_pylist()) == sorted(d["id"] for d in docs)
    expected = expected_links(reference, docs)
    assert links_by_doc(read_output(str(out), "links")) == {k: v for k, v in expected.items() if v}


@pytest.mark.timeout(300)
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts the driver's processes in /proc")
def test_a_killed_embed_entities_driver_leaves_no_process_and_resumes_exactly(embedded, work):
    from elcore.embeddings import read_embeddings

    out = work["root"] / "emb-killed"
    command = [sys.executable, "-m", "pipelines.embed_entities", "--catalogue", work["catalogue_url"]]
    command += ["--model", work["model"], "--output", str(out), "--rows-per-part", "4", "--batch-size", "4"]
    kill_after_parts([*command, *SMALL_FLAGS], out, parts=2, of=NUM_ENTITIES // 4)
    np.testing.assert_array_equal(read_embeddings(str(out))[0], read_embeddings(embedded[0].output)[0])


@pytest.mark.timeout(300)
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts the driver's processes in /proc")
def test_a_killed_build_index_driver_leaves_no_process_and_resumes_exactly(embedded, work):
    """60 shards built one at a time (each task asks for 2 CPUs); SIGKILL after 3, re-run: the index
    elcore builds in one process."""
    from elcore.embeddings import read_embeddings
    from elcore.index import ShardedIndex, load_index

    out = work["root"] / "index-killed"
    command = [sys.executable, "-m", "pipelines.build_index", "--embeddings", embedded[0].output]
    command += ["--output", str(out), "--kind", "flat", "--num-shards", "60", "--cpus-per-task", "2"]
    kill_after_parts(command, out, parts=3, of=60)
    vectors, _ = read_embeddings(embedded[0].output)
    queries = np.random.default_rng(5).standard_normal((20, vectors.shape[1])).astype(np.float32)
    found = load_index(str(out)).search(queries, 5)
    want = ShardedIndex.build(vectors, IndexSpec("flat"), num_shards=60).search(queries, 5)
    np.testing.assert_array_equal(found.ids, want.ids)
    np.testing.assert_allclose(found.scores, want.scores, rtol=1e-6)


def test_parquet_and_text_inputs_through_the_predictor(work, index_url, reference):
    """Read parts of each input format and call the predictor on them directly (no Ray): what the pipeline
    does per part, so these formats need no Ray run of their own."""
    from pipelines.corpus_input import input_format, plan_units, read_parts
    from pipelines.corpus_linker import CorpusLinker
    from pipelines.corpus_output import from_ipc

    docs = work["docs"][:6]
    pq.write_table(
        pa.Table.from_pylist(
            [{"doc": d["id"], "body": d["text"]} for d in docs] + [{"doc": "null", "body": None}]
        ),
        str(work["root"] / "c.parquet"),
    )
    texts = work["root"] / "texts"
    (texts / "sub").mkdir(parents=True)
    for d in docs:
        (texts / "sub" / f"{d['id']}.txt").write_text(d["text"])
    (texts / "sub" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    predictor = CorpusLinker(work["model"], work["catalogue_url"], index_url, None, 32, {}, 1, False)
    expected = {k: v for k, v in expected_links(reference, docs).items() if v}
    for url, fields, ids in [
        (str(work["root"] / "c.parquet"), ("doc", "body"), lambda k: k),
        ("file://" + str(texts), ("id", "text"), lambda k: f"sub/{k}"),
    ]:
        fmt = input_format(url)
        units = plan_units(url, fmt, docs_per_part=100)
        parts = read_parts(units[0], fmt, url, fields[0], fields[1], 100, frozenset())
        batch = {key: np.array([parts[0][key]], dtype=object) for key in parts[0]}
        linked = predictor(batch)
        links, status = from_ipc(linked["links"][0]), from_ipc(linked["status"][0])
        assert links_by_doc(links) == {ids(k): v for k, v in expected.items()}
        failed = [r for r in status.to_pylist() if r["status"] == "failed"]
        assert status.num_rows == 7 and len(failed) == 1
        assert failed[0]["doc_id"] == ids("null" if fmt == "parquet" else "latin1")
        assert ("must be a string" if fmt == "parquet" else "UTF-8") in failed[0]["error"]


# -- evaluate-corpus ----------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_evaluate_corpus_equals_elcore_metrics(linked, work, reference):
    from elcore.data import Example, GoldMention, write_examples
    from elcore.metrics import evaluate, predictions_from_links
    from pipelines.evaluate import EvaluateCorpusConfig, run

    rng = random.Random(3)
    predicted = reference.link([d["text"] for d in work["docs"]])
    examples = []
    for doc, links in zip(work["docs"], predicted, strict=True):
        golds = [GoldMention(k.start, k.end, k.qid or k.entity_id) for k in links if rng.random() < 0.5]
        golds.append(GoldMention(None, None, f"Q{rng.randint(1, 50)}"))
        examples.append(Example(doc["id"], doc["text"], tuple(golds)))
    examples.append(Example("never-linked", "paris", (GoldMention(0, 5, "Q90"),)))
    gold_url = str(work["root"] / "gold.jsonl")
    write_examples(gold_url, examples)
    config = EvaluateCorpusConfig(
        gold=gold_url,
        links=linked[0].output,
        catalogue=work["catalogue_url"],
        output=str(work["root"] / "report.json"),
    )
    report = run(config)
    has_text = reference.catalogue
    keys_with_text = {k for r in has_text.table.to_pylist() for k in (r["id"], r["qid"]) if k and r["text"]}
    want = evaluate(
        examples, [predictions_from_links(p) for p in predicted] + [[]], keys_with_text.__contains__
    )
    assert report["metrics"] == want
    assert report["examples_missing_from_output"] == 1
    assert fs.read_json(config.output)["metrics"] == want


# -- CLI and python -m ----------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_cli_commands_and_module_main(embedded, work):
    import typer
    from typer.testing import CliRunner

    from elcore.index import load_index
    from pipelines import build_index
    from pipelines.stages import STAGES, register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    for name in STAGES:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "--address" in result.output
    out = str(work["root"] / "index-cli")
    result = runner.invoke(
        app,
        [
            "build-index",
            "--embeddings",
            embedded[0].output,
            "--output",
            out,
            "--kind",
            "hnsw",
            "--num-shards",
            "3",
            "--cpus-per-task",
            "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["shards"] == 3 and load_index(out).ntotal == NUM_ENTITIES
    summary = build_index.main(
        ["--embeddings", embedded[0].output, "--output", out, "--kind", "hnsw", "--num-shards", "3"]
    )
    assert summary["shards_skipped"] == 3
    with pytest.raises(SystemExit) as exit_info:
        build_index.main(["--embeddings", embedded[0].output, "--output", out, "--kind", "bogus"])
    assert exit_info.value.code == 2


@pytest.mark.timeout(30)
def test_actor_pools_leave_cpu_for_read_and_write_tasks(ray_local):
    """On 2 CPUs, actors asking for a whole CPU each would starve the read/write tasks (Ray Data then waits
    forever): the plan gives them fractions and leaves RESERVED_CPUS free."""
    from pipelines.common import RESERVED_CPUS, plan_actors

    one, two = plan_actors(num_actors=1), plan_actors(num_actors=2)
    assert (one.num_actors, one.num_cpus, one.torch_threads) == (1, 1.0, 2)
    assert two.num_actors == 2 and two.num_cpus * 2 <= 2 - RESERVED_CPUS and two.torch_threads == 1
    assert plan_actors().num_actors == 1  # default: as many 1-CPU actors as fit beside the reserve
    with pytest.raises(ConfigError, match="no GPU"):
        plan_actors(use_gpu=True)


def test_link_corpus_defaults_to_the_embedded_linker(tmp_path, monkeypatch):
    from elcore.errors import ModelNotFoundError
    from pipelines.link_corpus import LinkCorpusConfig

    monkeypatch.setenv("ELQ_DEFAULT_MODEL", str(tmp_path / "default"))
    with pytest.raises(ModelNotFoundError, match="elq build-default"):
        LinkCorpusConfig(input="docs.jsonl", output="out").validate()
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "elq_config.json").write_text("{}")
    assert LinkCorpusConfig(input="docs.jsonl", output="out").validate().model == str(tmp_path / "default")
