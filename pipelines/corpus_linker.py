"""`CorpusLinker`: the Ray Data actor of `link-corpus`, one `elcore.linker.Linker` per actor.

A batch row is one part of the corpus (its documents as list columns, from `corpus_input.read_units`); the
output row is the same part with its links and status tables as Arrow IPC bytes (`corpus_output.link_part`),
which `corpus_output.write_part` stores. Retrieval is the index loaded in the actor, or the index shards
served by `shard_servers.ShardServer` actors when `shards` is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from elcore import settings
from elcore.index import load_index

from .corpus_output import link_part, to_ipc
from .shard_servers import RemoteShardedIndex


class CorpusLinker:
    """Ray Data adapter: a `Linker` built once per actor; a row is one part of the corpus, the output row the
    same part with its links and status tables (Arrow IPC bytes)."""

    def __init__(
        self,
        model_dir: str,
        catalogue: str | None,
        index: str,
        shards: list | None,
        batch_size: int,
        overrides: dict[str, Any],
        torch_threads: int,
        use_gpu: bool,
    ) -> None:
        import torch

        from elcore.linker import Linker

        settings.hf_offline()
        torch.set_num_threads(torch_threads)
        # faiss gets the actor's threads too: its default (every core) would oversubscribe the node.
        entity_index: Any = (
            RemoteShardedIndex(*shards) if shards else load_index(index, num_threads=torch_threads)
        )
        self.linker = Linker.from_pretrained(
            model_dir,
            catalogue=catalogue,
            index=entity_index,
            batch_size=batch_size,
            device="cuda" if use_gpu else "cpu",
            **overrides,
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        links, status = [], []
        for i in range(len(batch["part"])):
            if batch["skip"][i]:
                links.append(b"")
                status.append(b"")
                continue
            docs = [batch[key][i].tolist() for key in ("source", "line", "doc_id", "text", "error")]
            link_table, status_table = link_part(self.linker, *docs)
            links.append(to_ipc(link_table))
            status.append(to_ipc(status_table))
        keep = ("part", "weight", "skip", "docs")
        return {**{key: batch[key] for key in keep}, "links": links, "status": status}
