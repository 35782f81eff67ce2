"""In-process encoding of entities with the model's entity encoder, with an on-disk cache.

For catalogues of millions of entities use the Ray pipeline (`pipelines.embed_entities`); this is
for small catalogues, tests and a single machine.

    >>> vectors = catalogue_vectors(model, catalogue)   # float32 [len(catalogue), dim], cached
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from tqdm.auto import tqdm

from . import fs
from .catalogue import EntityCatalogue
from .embeddings import (
    MANIFEST,
    EmbeddingsManifest,
    cache_url,
    part_path,
    read_embeddings,
    write_embeddings_part,
    write_manifest,
    written_parts,
)
from .model import ElqModel

log = logging.getLogger(__name__)


@torch.inference_mode()
def encode_entities(
    model: ElqModel, entities: list[tuple[str, str]], batch_size: int = 64, progress: bool = True
) -> np.ndarray:
    """Entity vectors (float32 `[n, dim]`) for `(title, text)` pairs, in input order.

    Inputs are batched by length (longest first) to cut padding.
    """
    if not entities:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    order = np.argsort([-(len(title) + len(text or "")) for title, text in entities], kind="stable")
    out = np.zeros((len(entities), model.config.hidden_size), dtype=np.float32)
    was_training = model.training
    model.eval()
    device = model.device
    bar = tqdm(total=len(entities), desc="encode entities", unit="ent", disable=not progress)
    for lo in range(0, len(order), batch_size):
        chunk = order[lo : lo + batch_size]
        inputs = model.tokenize_entities([entities[i] for i in chunk])
        vectors = model.encode_entities(inputs["input_ids"].to(device), inputs["attention_mask"].to(device))
        out[chunk] = vectors.float().cpu().numpy()
        bar.update(len(chunk))
    bar.close()
    model.train(was_training)
    return out


def catalogue_vectors(
    model: ElqModel,
    catalogue: EntityCatalogue,
    batch_size: int = 64,
    cache: bool = True,
    progress: bool = True,
    part_size: int = 8192,
) -> np.ndarray:
    """Vectors of every catalogue row, read from / written to the cache keyed by both fingerprints.

    The cache is written in parts of `part_size` rows, so an interrupted run resumes where it stopped.
    """
    model_fp, catalogue_fp = model.entity_fingerprint(), catalogue.fingerprint
    if not cache:
        rows = np.arange(len(catalogue), dtype=np.int64)
        return encode_entities(model, catalogue.entity_inputs(rows), batch_size=batch_size, progress=progress)
    url = cache_url(model_fp, catalogue_fp)
    if fs.exists(fs.join(url, MANIFEST)):
        vectors, manifest = read_embeddings(url)
        if manifest.model_fingerprint == model_fp and manifest.catalogue_fingerprint == catalogue_fp:
            log.info("entity vectors from cache %s", url)
            return vectors
    done = written_parts(url)
    for start, name in _parts(len(catalogue), part_size):
        if name in done:
            continue
        rows = np.arange(start, min(start + part_size, len(catalogue)), dtype=np.int64)
        log.info("encoding catalogue rows %d-%d of %d", rows[0], rows[-1], len(catalogue))
        vectors = encode_entities(
            model, catalogue.entity_inputs(rows), batch_size=batch_size, progress=progress
        )
        _write_part(url, name, catalogue, rows, vectors)
    _write_cache_manifest(url, model_fp, catalogue, model.config.hidden_size, part_size)
    return read_embeddings(url)[0]


def store_catalogue_vectors(
    model: ElqModel, catalogue: EntityCatalogue, vectors: np.ndarray, part_size: int = 8192
) -> None:
    """Put vectors computed elsewhere (e.g. shared out over training workers) into the cache."""
    url = cache_url(model.entity_fingerprint(), catalogue.fingerprint)
    for start, name in _parts(len(catalogue), part_size):
        rows = np.arange(start, min(start + part_size, len(catalogue)), dtype=np.int64)
        _write_part(url, name, catalogue, rows, vectors[rows])
    _write_cache_manifest(url, model.entity_fingerprint(), catalogue, vectors.shape[1], part_size)


def _parts(count: int, part_size: int) -> list[tuple[int, str]]:
    return [(start, f"part-{start:010d}") for start in range(0, count, part_size)]


def _write_part(
    url: str, name: str, catalogue: EntityCatalogue, rows: np.ndarray, vectors: np.ndarray
) -> None:
    table = catalogue.table
    ids = table.column("id").slice(int(rows[0]), len(rows)).to_pylist()
    qids = table.column("qid").slice(int(rows[0]), len(rows)).to_pylist()
    write_embeddings_part(url, name, rows, ids, qids, vectors, dtype="float32")


def _write_cache_manifest(
    url: str, model_fp: str, catalogue: EntityCatalogue, dim: int, part_size: int
) -> None:
    write_manifest(
        url,
        EmbeddingsManifest(
            model_fingerprint=model_fp,
            catalogue_fingerprint=catalogue.fingerprint,
            dim=dim,
            dtype="float32",
            count=len(catalogue),
            parts=[part_path(name) for _, name in _parts(len(catalogue), part_size)],
        ),
    )
