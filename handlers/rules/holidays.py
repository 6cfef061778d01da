"""Public holidays, pure: which local dates a holiday code ("AT-4", "DE-BY", "AT") closes, and their names.

The dates come from the `holidays` package (ISO 3166 country, optional subdivision as it names them);
nothing is listed by hand. A location's own code overrides the business's.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from types import MappingProxyType

import holidays as calendars


class UnknownHolidays(ValueError):
    """A holiday code the `holidays` package does not know."""


def split_code(code: str) -> tuple[str, str | None]:
    """"AT-4" → ("AT", "4"); "AT" → ("AT", None). The subdivision is kept as written ("DE-Augsburg")."""
    country, _, subdivision = code.strip().partition("-")
    return country.upper(), subdivision or None


def check_code(code: str) -> str:
    """The code as stored ("at-4" → "AT-4", "de-by" → "DE-BY"), or UnknownHolidays naming what is wrong."""
    country, subdivision = split_code(code)
    for variant in dict.fromkeys([subdivision, subdivision and subdivision.upper()]):
        try:
            calendars.country_holidays(country, subdiv=variant)
        except NotImplementedError as exc:  # the package's answer to an unknown country or subdivision
            problem = str(exc)
            continue
        return country + (f"-{variant}" if variant else "")
    raise UnknownHolidays(problem)


def effective_code(location: str | None, business: str | None) -> str | None:
    """The code that applies at a location: its own, else the business's (None: no public holidays)."""
    return location or business


def holidays_between(code: str | None, start: date, end: date, lang: str) -> dict[date, str]:
    """The public holidays from `start` to `end` (both included), named in `lang` where the package can."""
    if code is None or end < start:
        return {}
    found: dict[date, str] = {}
    for year in range(start.year, end.year + 1):
        found.update((day, name) for day, name in _year(code, year, lang).items() if start <= day <= end)
    return found


def holiday_on(code: str | None, day: date, lang: str) -> str | None:
    """The holiday's name if `day` is one under `code`."""
    return _year(code, day.year, lang).get(day) if code else None


@lru_cache(maxsize=256)
def _year(code: str, year: int, lang: str) -> Mapping[date, str]:
    """One year's holidays under one code, built once per process (the package computes them on every call)."""
    country, subdivision = split_code(code)
    entity = calendars.country_holidays(country, subdiv=subdivision, years=year, language=_language(country, lang))
    return MappingProxyType(dict(sorted(entity.items())))


def _language(country: str, lang: str) -> str | None:
    """The package's language closest to ours ("en" → "en_US"), else the country's own.

    Named always: without a language the package follows the process locale, and a server's answers
    would then depend on how it was started.
    """
    offered = calendars.list_localized_countries().get(country, [])
    if lang in offered:
        return lang
    close = next((code for code in offered if code.split("_")[0] == lang), None)
    return close or calendars.country_holidays(country).default_language
