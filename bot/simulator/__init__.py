"""The chat simulator page: play a citizen or a deputy and talk to the bot over real WeChat XML."""
from bot.simulator.app import create_simulator_app

__all__ = ["create_simulator_app"]
