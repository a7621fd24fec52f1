"""The dates tool: weekdays, days between two dates, and a date moved by days, weeks, months
or years, computed with python-dateutil.

It answers three shapes of question and abstains on anything else: a date that is not fully
written (no year), a qualifier it does not model ("business days", "inclusive"), or more or
fewer dates than the question's shape needs.

    What day of the week was 2024-03-15?                     -> Friday
    How many days are there between 2024-01-05 and 2024-03-01? -> 56 days
    What date is 30 days after January 5, 2024?              -> 2024-02-04
"""

from __future__ import annotations

import re
from datetime import date

from dateutil import parser
from dateutil.relativedelta import relativedelta

from council.heads.tools import ToolAnswer
from council.types import Message, last_user_text

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
# Only dates written with their year; 03/04/2024 is left out (day or month first?).
_DATE = re.compile(
    rf"\b\d{{4}}-\d{{1,2}}-\d{{1,2}}\b"
    rf"|\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}\b",
    re.IGNORECASE,
)
_UNMODELLED = re.compile(
    r"\b(business|working|week ?days|weekends?|holidays?|inclusive|exclusive|including|"
    r"excluding|hours?|minutes?|seconds?|ago|today|tomorrow|yesterday|now)\b",
    re.IGNORECASE,
)
_WEEKDAY = re.compile(r"\bwhat day\b|\bday of the week\b|\bweekday\b", re.IGNORECASE)
_BETWEEN = re.compile(r"\bhow many (days|weeks)\b", re.IGNORECASE)
_SHIFT = re.compile(
    r"\b(\d{1,5})\s+(day|week|month|year)s?\s+(after|before|from|later than|earlier than)\b",
    re.IGNORECASE,
)
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class Dates:
    exact = True  # computed from the question alone

    def answer(self, messages: list[Message]) -> ToolAnswer:
        question = last_user_text(messages)
        found = _DATE.findall(question)
        if not found:
            return ToolAnswer(None, "no date with its year in the question")
        if m := _UNMODELLED.search(question):
            return ToolAnswer(None, f"the question asks about {m[0]!r}, which dates does not model")
        try:
            dates = [parser.parse(text).date() for text in found]
        except (ValueError, OverflowError) as exc:
            return ToolAnswer(None, f"{found} is not a calendar date ({exc})")
        shift = _SHIFT.findall(question)
        if len(shift) == 1 and len(dates) == 1:
            return _shifted(dates[0], shift[0], bool(_WEEKDAY.search(question)))
        if shift:
            return ToolAnswer(None, "more than one date or shift in the question")
        if (m := _BETWEEN.search(question)) and len(dates) == 2:
            return _between(dates[0], dates[1], m[1].lower())
        if _WEEKDAY.search(question) and len(dates) == 1:
            d = dates[0]
            return ToolAnswer(_DAYS[d.weekday()], f"weekday of {d.isoformat()} (dateutil)")
        return ToolAnswer(None, f"not a weekday, between or shift question ({len(dates)} dates)")


def _between(a: date, b: date, unit: str) -> ToolAnswer:
    days = abs((b - a).days)
    ran = f"{b.isoformat()} - {a.isoformat()} = {days} days (dateutil)"
    if unit == "days":
        return ToolAnswer(f"{days} days", ran)
    if days % 7:
        return ToolAnswer(None, f"{days} days is not a whole number of weeks")
    return ToolAnswer(f"{days // 7} weeks", ran)


def _shifted(start: date, shift: tuple[str, str, str], weekday: bool) -> ToolAnswer:
    count, unit, direction = int(shift[0]), shift[1].lower(), shift[2].lower()
    sign = -1 if direction in ("before", "earlier than") else 1
    try:
        moved = start + relativedelta(**{f"{unit}s": sign * count})
    except (ValueError, OverflowError) as exc:
        return ToolAnswer(None, f"{start} moved by {count} {unit}s leaves the calendar ({exc})")
    units = unit if count == 1 else f"{unit}s"
    ran = f"{start.isoformat()} {'+' if sign > 0 else '-'} {count} {units} = {moved} (dateutil)"
    text = _DAYS[moved.weekday()] if weekday else moved.isoformat()
    return ToolAnswer(text, ran)
