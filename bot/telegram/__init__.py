"""The Telegram edge: updates become Inbounds for the desk, and its Replies become messages. Nothing else."""
from bot.telegram.app import application_builder, build_application, start_telegram, stop_telegram
from bot.telegram.delivery import TelegramTransport
from bot.telegram.removals import Removals
from bot.telegram.updates import SenderOrder

__all__ = ["application_builder", "build_application", "start_telegram", "stop_telegram", "TelegramTransport",
           "Removals", "SenderOrder"]
