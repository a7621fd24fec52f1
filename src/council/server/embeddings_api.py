"""OpenAI-compatible POST /v1/embeddings, served by the council's own embedder (the one memory
and the ballot use): text in, unit vectors out, as floats or base64 float32."""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from council.embeddings import PACKAGED_NAME, Embedder
from council.errors import InvalidRequestError, ModelNotFoundError, PromptTooLongError
from council.server.council_api import council_of

router = APIRouter(prefix="/v1", tags=["openai"])
SEND_TEXT = "send the text itself (a string or a list of strings): this server tokenizes it"


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send optional fields we ignore

    model: str = Field(min_length=1, description="The embedding model's id (see /v1/models).")
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts (token arrays are not accepted)."
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, description="Only the model's own size.")
    user: str | None = Field(None, description="Accepted for compatibility; not used.")

    def texts(self) -> list[str]:
        """The inputs as texts: one 400 for token arrays, empty lists and empty strings."""
        given = [self.input] if isinstance(self.input, str) else list(self.input)
        if not given:
            raise InvalidRequestError("input is an empty list; " + SEND_TEXT, param="input")
        texts = [t for t in given if isinstance(t, str)]
        if len(texts) != len(given):
            raise InvalidRequestError(
                "input holds token ids, which this server does not accept; " + SEND_TEXT,
                param="input",
                code="token_input_unsupported",
            )
        for i, t in enumerate(texts):
            if not t:
                raise InvalidRequestError(
                    f"input[{i}] is an empty string; send non-empty text (or leave it out).",
                    param="input",
                )
            try:  # JSON's "\ud800" is a lone surrogate that no tokenizer takes
                t.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidRequestError(
                    f"input[{i}] has an unpaired surrogate (\\ud800-\\udfff escape): send "
                    "valid Unicode text.",
                    param="input",
                ) from None
        return texts


def embedder_of(request: Request) -> Embedder:
    """The app's embedder, or a 400 that says how to turn it on."""
    embedder: Embedder | None = council_of(request).embedder
    if embedder is None:
        raise InvalidRequestError(
            "Embeddings are off on this server (COUNCIL_EMBEDDER=none). Set COUNCIL_EMBEDDER="
            "minilm (the packaged model) or a sentence-transformers folder, and restart.",
            param="model",
            code="embeddings_disabled",
        )
    return embedder


def embedding_models(request: Request) -> list[dict[str, Any]]:
    """/v1/models entries for the embedder (none when it is off)."""
    embedder = council_of(request).embedder
    if embedder is None:
        return []
    owner = "sentence-transformers" if embedder.name == PACKAGED_NAME else "council"
    created = int(request.app.state.started_at)
    model = {"id": embedder.name, "object": "model", "created": created, "owned_by": owner}
    return [{**model, "type": "embedding"}]


def _check_sizes(embedder: Embedder, body: EmbeddingsRequest, counts: list[int]) -> None:
    """dimensions must be the model's own; each input must fit the model's window."""
    if body.dimensions is not None and body.dimensions != embedder.dim:
        raise InvalidRequestError(
            f"dimensions {body.dimensions} is not served: {embedder.name} gives {embedder.dim} "
            f"numbers per vector. Leave dimensions out (or send {embedder.dim}).",
            param="dimensions",
            code="dimensions_unsupported",
        )
    for i, n in enumerate(counts):
        if n > embedder.max_tokens:
            raise PromptTooLongError(
                f"input[{i}] has {n} tokens; {embedder.name} reads at most "
                f"{embedder.max_tokens}. Split it into shorter pieces and embed each.",
                param="input",
            )


def _encode(vector: np.ndarray, fmt: str) -> list[float] | str:
    if fmt == "base64":  # what the OpenAI SDK asks for by default: little-endian float32
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


def _embed(embedder: Embedder, body: EmbeddingsRequest, texts: list[str]) -> dict[str, Any]:
    """Off the event loop: count tokens, check sizes, encode the batch."""
    counts = embedder.count_tokens(texts)
    _check_sizes(embedder, body, counts)
    vectors = embedder.encode(texts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": embedder.name,
        "usage": {"prompt_tokens": sum(counts), "total_tokens": sum(counts)},
    }


@router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request) -> dict[str, Any]:
    """Embed a text or a batch of texts with the server's embedder (OpenAI's shape)."""
    embedder = embedder_of(request)
    if body.model != embedder.name:
        raise ModelNotFoundError(
            f"Unknown embedding model {body.model!r}: this server embeds with "
            f"{embedder.name!r}; send model={embedder.name!r}."
        )
    texts = body.texts()
    limit = request.app.state.settings.memory.embed_max_inputs
    if len(texts) > limit:
        raise InvalidRequestError(
            f"input has {len(texts)} texts; send at most {limit} per request "
            "(COUNCIL_EMBED_MAX_INPUTS), in several requests.",
            param="input",
            code="too_many_inputs",
        )
    return await asyncio.to_thread(_embed, embedder, body, texts)
