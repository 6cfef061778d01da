"""The command menu: what customers see, and a menu per chat for staff, admins, support and managers."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.ext import Application

from bot.telegram.calls import tolerate
from handlers.router import Desk
from templates import LANGUAGES, has_word, word

MAX_DESCRIPTION = 256  # Bot API limit for a menu command's description
COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")  # what setMyCommands accepts

# (command, description) pairs for the menu, per language.
CommandsFor = Callable[[str], Iterable[tuple[str, str]]]


def customer_menu(desk: Desk) -> CommandsFor:
    """The menu a plain customer sees: the commands everyone and customers may use, with their help line."""
    def commands(lang: str) -> list[tuple[str, str]]:
        allowed = desk.allowed_commands({"everyone", "customer"})
        return [(c.word, word(lang, f"help.{c.word}")) for c in allowed if has_word(lang, f"help.{c.word}")]
    return commands


def bot_commands(pairs: Iterable[tuple[str, str]]) -> list[BotCommand]:
    """Keep what the Bot API accepts: lowercase names of 1–32 characters, descriptions of 1–256."""
    return [BotCommand(name, description[:MAX_DESCRIPTION]) for name, description in pairs
            if COMMAND_NAME.match(name) and description.strip()]


async def publish_commands(app: Application) -> None:
    """Set the command menu for German, English, and everyone else (the desk's default language)."""
    commands_for: CommandsFor = app.bot_data["commands_for"]
    default = app.bot_data["desk"].config.default_language
    for lang in (None, *LANGUAGES):
        commands = bot_commands(commands_for(lang or default))
        await tolerate(app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=lang),
                       f"setMyCommands ({lang or 'default'})")
    await publish_role_menus(app, default)


async def publish_role_menus(app: Application, default: str) -> None:
    """Give staff, admins, support and managers a menu of what their roles may use, in their own chat."""
    desk: Desk = app.bot_data["desk"]
    for address, roles, lang in await desk.chat_roles():
        chat_id = address.split(":", 1)[1]
        if not chat_id.lstrip("-").isdigit():
            continue
        lang = lang or default
        pairs = [(c.word, word(lang, f"help.{c.word}")) for c in desk.allowed_commands(roles)
                 if has_word(lang, f"help.{c.word}")]
        await tolerate(app.bot.set_my_commands(bot_commands(pairs), scope=BotCommandScopeChat(int(chat_id))),
                       f"setMyCommands (chat {chat_id})")
