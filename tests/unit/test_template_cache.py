"""Message templates are compiled once and kept for good: compiling one costs ~30 times rendering it."""
from importlib import resources

from templates import LANGUAGES, environment


def message_templates() -> list[str]:
    return sorted(f"{lang}/{entry.name}" for lang in LANGUAGES
                  for entry in resources.files("templates").joinpath(lang).iterdir() if entry.name.endswith(".j2"))


def test_every_message_template_stays_compiled_once_all_were_used():
    names = message_templates()
    env = environment()
    first = env.get_template(names[0])
    for name in names[1:]:
        env.get_template(name)
    assert env.get_template(names[0]) is first
