"""One model load at a time in this process.

transformers builds a model's modules on the meta device and then fills in the weights, with
process-wide switches (the default device, patched `nn.Module` init) that are not thread-safe.
Two `from_pretrained` calls on two threads at once (a server starting a SmolLM2 head and a
Gemma head together, each on its model's own executor) leave tied weights untied: `lm_head`
comes back newly initialised or still on meta, and the head writes random tokens or fails to
pack. Every load of weights (local heads, adapters, GGUF conversion, the embedder, training)
takes this lock; loads are rare and slow, so they lose nothing by going one at a time.

    with LOADING:
        model = AutoModelForCausalLM.from_pretrained(folder)
"""

from __future__ import annotations

import threading

LOADING = threading.RLock()  # re-entrant: a load that converts a model first nests
