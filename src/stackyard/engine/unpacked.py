"""A GGUF model kept as a plain Hugging Face directory (dequantized weights in safetensors, and
the tokenizer) in a local cache, converted once per machine.

transformers reads a GGUF file in pure Python: SmolLM2-135M takes about 33 s for the weights
and 10 s for the tokenizer on two cores, where the same model from safetensors loads in about
a second. Every process that loads the model (the server, each fine-tuning worker, each Ray
worker, the CLI) paid that. Now the first load converts the file (with transformers'
``gguf_file=``, as before) and writes the directory; the next ones, in any process, read it.
Nothing is downloaded. The weights are exactly those a GGUF load gives (float32).

The cache is ``$STACKYARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/stackyard``, else
``~/.cache/stackyard``. A directory is keyed by the GGUF file (path, size, modification time)
and the transformers version, written under a lock, and complete or absent. Where the cache
cannot be written, models load from the GGUF file as before.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from stackyard.engine.sources import Source

log = logging.getLogger("stackyard.engine")
COMPLETE = ".complete"


def cache_root() -> Path:
    explicit = os.environ.get("STACKYARD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "stackyard"


def folder_for(source: Source) -> Path:
    import transformers

    gguf = (source.directory / str(source.gguf_file)).resolve()
    stat = gguf.stat()
    identity = f"{gguf}:{stat.st_size}:{stat.st_mtime_ns}:{transformers.__version__}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return cache_root() / "gguf" / f"{gguf.stem}-{digest}"


def unpacked(source: Source) -> Source:
    """``source`` as a plain model directory (converted now if needed); a source that is not
    a GGUF file, or one whose cache cannot be written, comes back as it is."""
    if not source.gguf_file:
        return source
    try:
        folder = folder_for(source)
        if not (folder / COMPLETE).exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            with (folder.parent / f"{folder.name}.lock").open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # one process converts; the others wait
                if not (folder / COMPLETE).exists():
                    _convert(source, folder)
    except OSError as exc:
        log.warning("cannot cache %s as a plain model (%s); loading it as is", source.label, exc)
        return source
    return Source(source.task, folder)


def unmark_gguf(model: Any) -> None:
    """A model loaded from GGUF is dequantized on load, yet marked quantized, and transformers
    refuses to save it; clear the mark (the weights are plain float32)."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _convert(source: Source, folder: Path) -> None:
    import torch
    import transformers

    started = time.monotonic()
    kwargs: dict[str, Any] = {"gguf_file": source.gguf_file}
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source.directory), **kwargs)
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(
        str(source.directory), dtype=torch.float32, **kwargs
    )
    unmark_gguf(model)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    (partial / COMPLETE).write_text(str(source.directory / str(source.gguf_file)))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    log.info(
        "converted %s to %s once, in %.1f s",
        source.gguf_file,
        folder,
        time.monotonic() - started,
    )
