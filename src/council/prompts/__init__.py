"""Prompt templates are package data (YAML), loaded by name."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def load_prompt(name: str) -> dict[str, str]:
    text = resources.files("council.prompts").joinpath(f"{name}.yaml").read_text()
    data: dict[str, str] = yaml.safe_load(text)
    return data
