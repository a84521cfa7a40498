"""The RAG benchmark's anchors, each run in the anchor venv (``benchmarks/.venvs/llamaindex``):
LlamaIndex's ``IngestionPipeline`` over the same folder with the same model, and hnswlib on the
same vectors. Each prints one JSON line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from benchmarks._procs import torch_venv

PACKAGES = ("llama-index-core", "llama-index-embeddings-huggingface", "hnswlib")

LLAMAINDEX = r"""
import json, os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
folder, model_dir, batch, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
import torch
from llama_index.core import SimpleDirectoryReader
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from transformers import AutoTokenizer
import llama_index.core

tokenizer = AutoTokenizer.from_pretrained(model_dir)
options = {} if dtype == "float32" else {"model_kwargs": {"torch_dtype": getattr(torch, dtype)}}
embed = HuggingFaceEmbedding(
    model_name=model_dir, device="cpu", embed_batch_size=batch, **options
)
embed.get_text_embedding("warm up")  # load time is not ingest time (as for Stackyard)
started = time.perf_counter()
documents = SimpleDirectoryReader(folder, filename_as_id=True).load_data()
for document in documents:  # embed the text alone, as Stackyard does
    document.excluded_embed_metadata_keys = list(document.metadata)
store = SimpleVectorStore()
pipeline = IngestionPipeline(
    transformations=[
        # No tiktoken download offline: count with the model's own tokenizer.
        SentenceSplitter(chunk_size=4096, chunk_overlap=0, tokenizer=tokenizer.encode),
        embed,
    ],
    vector_store=store,
)
nodes = pipeline.run(documents=documents)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "documents": len(documents), "nodes": len(nodes),
                  "version": llama_index.core.__version__}))
"""

HNSWLIB = r"""
import json, sys, time
import hnswlib, numpy as np
data, queries, truth = (np.load(p) for p in sys.argv[1:4])
k, ef = int(sys.argv[4]), int(sys.argv[5])
index = hnswlib.Index(space="cosine", dim=data.shape[1])
started = time.perf_counter()
index.init_index(max_elements=len(data), M=16, ef_construction=128)
index.add_items(data, np.arange(len(data)))
build = time.perf_counter() - started
index.set_ef(ef)
index.set_num_threads(1)
found = []
started = time.perf_counter()
for q in queries:
    labels, _ = index.knn_query(q, k=k)
    found.append(labels[0])
seconds = time.perf_counter() - started
recall = float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)]))
print(json.dumps({"recall": recall, "qps": len(queries) / seconds, "build_s": build,
                  "version": hnswlib.__version__ if hasattr(hnswlib, "__version__") else "?"}))
"""


def python() -> Path:
    return torch_venv("llamaindex", PACKAGES)


def run(script: str, *args: str) -> dict[str, object]:
    result = subprocess.run(
        [str(python()), "-c", script, *args], check=True, capture_output=True, text=True
    )
    last = result.stdout.strip().splitlines()[-1]
    parsed: dict[str, object] = json.loads(last)
    return parsed


def llamaindex_ingest(
    folder: Path, model_dir: Path, batch: int, dtype: str = "float32"
) -> dict[str, object]:
    """``dtype``: the model's weights (``float32``, LlamaIndex's default, or ``bfloat16``)."""
    return run(LLAMAINDEX, str(folder), str(model_dir), str(batch), dtype)


def hnswlib_search(data: Path, queries: Path, truth: Path, k: int, ef: int) -> dict[str, object]:
    return run(HNSWLIB, str(data), str(queries), str(truth), str(k), str(ef))
