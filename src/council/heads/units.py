"""The units tool: a quantity converted to another unit with pint.

It answers "Convert 5 km to miles", "What is 100 degrees Fahrenheit in Celsius?" and "How
many feet are in 3 meters?", and abstains when the question is anything more (other words
around the conversion), a unit pint does not know, or units of different dimensions.
Results keep 6 significant digits: pint converts in floating point.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from council.heads.tools import ToolAnswer
from council.types import Message, last_user_text

_NUMBER = r"(?P<num>[-+]?\d+(?:\.\d+)?)"
_UNIT = r"[a-zA-Z°µ][a-zA-Z°µ/\^\d ]*?"
_SHAPES = [
    re.compile(
        rf"^(?:please\s+)?(?:convert|what\s+is|what's|how\s+much\s+is|express)\s+{_NUMBER}\s*"
        rf"(?P<src>{_UNIT})\s+(?:to|in|into|as)\s+(?P<dst>{_UNIT})\s*[?.!]?$",
        re.IGNORECASE,
    ),
    re.compile(
        rf"^how\s+many\s+(?P<dst>{_UNIT})\s+(?:are|is)\s+(?:there\s+)?in\s+{_NUMBER}\s*"
        rf"(?P<src>{_UNIT})\s*[?.!]?$",
        re.IGNORECASE,
    ),
]
# Temperatures as people write them; pint's own names are degF, degC, kelvin.
_ALIASES = {
    "f": "degF",
    "°f": "degF",
    "fahrenheit": "degF",
    "degrees fahrenheit": "degF",
    "c": "degC",
    "°c": "degC",
    "celsius": "degC",
    "degrees celsius": "degC",
    "centigrade": "degC",
    "k": "kelvin",
    "kelvins": "kelvin",
}


@cache
def _registry() -> Any:
    import pint  # imported here: building the registry takes seconds, once

    return pint.UnitRegistry()


class Units:
    exact = True  # computed from the question alone

    def answer(self, messages: list[Message]) -> ToolAnswer:
        question = " ".join(last_user_text(messages).split())
        m = next((m for s in _SHAPES if (m := s.match(question))), None)
        if m is None:
            return ToolAnswer(None, "not a unit conversion question")
        return convert(float(m["num"]), _unit(m["src"]), _unit(m["dst"]))


def _unit(text: str) -> str:
    text = text.strip().lower()
    return _ALIASES.get(text, text.removeprefix("degrees ").replace(" ", "_"))


def convert(value: float, src: str, dst: str) -> ToolAnswer:
    """`value` in `src` converted to `dst`, or an abstention saying why not."""
    import pint

    ureg = _registry()
    try:
        result = ureg.Quantity(value, src).to(dst)
    except pint.UndefinedUnitError as exc:
        return ToolAnswer(None, f"pint does not know the unit {exc.unit_names}")
    except pint.DimensionalityError:
        return ToolAnswer(None, f"{src} and {dst} measure different things")
    except (pint.PintError, ValueError, TypeError, AttributeError) as exc:
        return ToolAnswer(None, f"{value} {src} -> {dst} did not convert ({exc})")
    shown = f"{result.magnitude:.6g}"
    if "e" in shown or "inf" in shown or "nan" in shown:
        return ToolAnswer(None, f"{value} {src} in {dst} is {shown}, too far for 6 digits")
    given = f"{value:g} {ureg.Quantity(value, src).units:~P}"
    return ToolAnswer(f"{given} = {shown} {result.units:~P}", f"{given} -> {dst}: {shown} (pint)")
