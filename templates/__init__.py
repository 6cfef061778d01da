"""Every word a user reads, in German and English, rendered with Jinja2 and Babel."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape

LANGUAGES = ("de", "en")
TEMPLATE_CACHE = 2000  # compiled message templates kept; bounded, but above what the languages hold


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


def _zone(context) -> str:
    return context.get("tz") or "UTC"


# A day's buttons show the same dates and times to every customer: each is formatted once. Babel costs
# tens of microseconds a call, and a step that offers times calls it once per button.
FORMATTED_CACHE = 4096


@lru_cache(maxsize=FORMATTED_CACHE)
def _formatted_datetime(value: datetime, fmt: str, tz: str, lang: str) -> str:
    return format_datetime(value, fmt, tzinfo=ZoneInfo(tz), locale=lang)


@lru_cache(maxsize=FORMATTED_CACHE)
def _formatted_time(value: datetime, fmt: str, tz: str, lang: str) -> str:
    return format_time(value, fmt, tzinfo=ZoneInfo(tz), locale=lang)


@lru_cache(maxsize=FORMATTED_CACHE)
def _formatted_date(value: date, fmt: str, lang: str) -> str:
    return format_date(value, fmt, locale=lang)


@pass_context
def _datetime(context, value: datetime, fmt: str = "medium") -> str:
    return _formatted_datetime(value, fmt, _zone(context), context.get("lang", "en"))


@pass_context
def _time(context, value: datetime, fmt: str = "short") -> str:
    return _formatted_time(value, fmt, _zone(context), context.get("lang", "en"))


@pass_context
def _date(context, value: date | datetime, fmt: str = "full") -> str:
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(_zone(context))).date()
    return _formatted_date(value, fmt, context.get("lang", "en"))


@lru_cache(maxsize=1)
def environment() -> Environment:
    # The templates ship with the code: no stat per render to see whether one changed (auto_reload), and
    # room for every compiled one (Jinja keeps 400 by default; de and en hold more than that together).
    env = Environment(
        loader=PackageLoader("templates", ""),
        auto_reload=False,
        cache_size=TEMPLATE_CACHE,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters.update(datetime=_datetime, time=_time, date=_date)
    return env


def language(lang: str | None) -> str:
    return lang if lang in LANGUAGES else "en"


def render(name: str, lang: str, **values) -> Rendered:
    """Render template `name` in `lang`; blocks subject/text/html are optional, the body is the text."""
    lang = language(lang)
    template = environment().get_template(f"{lang}/{name}.j2")
    values["lang"] = lang
    if "text" not in template.blocks:
        return Rendered(None, template.render(values).strip(), None)
    context = template.new_context(values)

    def block(key: str) -> str | None:
        if key not in template.blocks:
            return None
        return "".join(template.blocks[key](context)).strip()

    return Rendered(block("subject"), block("text") or "", block("html"))


@lru_cache(maxsize=4)
def _words(lang: str) -> dict:
    """All `*.toml` word files of a language, merged table by table (one file per capability)."""
    merged: dict = {}
    for entry in sorted(resources.files("templates").joinpath(lang).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            for table, values in tomllib.loads(entry.read_text("utf-8")).items():
                if isinstance(values, dict):
                    merged.setdefault(table, {}).update(values)
                else:
                    merged.update({table: values})
    return merged


def word(lang: str, key: str, **values) -> str:
    """A short string (a button label, a help line) from words.toml, e.g. word("en", "help.book")."""
    node: Any = _words(language(lang))  # tables down to the string at the end of `key`
    for part in key.split("."):
        node = node[part]
    if "{{" in node:
        return _compiled(node).render(lang=lang, **values)
    return node


@lru_cache(maxsize=1024)
def _compiled(source: str):
    """A word with placeholders, compiled once: compiling costs ~30 times what rendering does, and day and
    time buttons render one word per button."""
    return environment().from_string(source)


def has_word(lang: str, key: str) -> bool:
    try:
        word(lang, key)
    except KeyError:
        return False
    return True


@lru_cache(maxsize=1)
def page_environment() -> Environment:
    """The booking page's markup (templates/page/): HTML escaped everywhere, the same date filters as messages."""
    env = Environment(
        loader=PackageLoader("templates", "page"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=select_autoescape(["html", "html.j2"], default=False),
    )
    env.filters.update(datetime=_datetime, time=_time, date=_date)
    return env


def page(name: str, lang: str, **values) -> str:
    """A page or script from templates/page/, in `lang`: it holds no words of its own, only markup; `t(key)` gives
    the words of the `[bookpage]` tables of the language's word files."""
    lang = language(lang)

    def t(key: str, **more) -> str:
        return word(lang, f"bookpage.{key}", **more)

    return page_environment().get_template(name).render(lang=lang, t=t, **values)


def page_asset(name: str) -> str:
    """A file of templates/page/ as it is (a stylesheet)."""
    return resources.files("templates").joinpath("page", name).read_text("utf-8")
