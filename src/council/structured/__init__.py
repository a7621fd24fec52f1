"""Structured output: JSON-schema grammars for local decoding, and the checks the ballot uses.

grammar.py compiles a schema (llguidance) into one constraint per generated row; canonical.py
parses, validates (jsonschema) and canonicalises answers, so votes compare JSON by value."""
