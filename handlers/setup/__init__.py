"""The setup file, a TOML description of the business (no conversation: it registers no chat commands)."""
from handlers.setup.apply import apply_setup
from handlers.setup.read import load_setup, parse_setup
from handlers.setup.spec import Interval, SetupError, SetupSpec

__all__ = ["apply_setup", "load_setup", "parse_setup", "Interval", "SetupError", "SetupSpec"]
