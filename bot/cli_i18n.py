"""Click's own words (usage line, help, error messages) in Chinese, for the staff who run commands.

Click marks its messages for gettext: each of its modules does `from gettext import gettext as _`
(the default domain). The stdlib route to translate them, a compiled .mo file found through
LANGUAGE=zh_CN, would keep the texts in a binary file and turn every gettext user in the process
Chinese. Instead the catalog is data in config/texts/cli.yaml (`click_messages`, msgid → Chinese)
and a translation object from it becomes the `_` and `ngettext` of click's modules. tests/cli
checks that every msgid still occurs in click's source, so an upgrade that rewords one fails a test
rather than printing English. Usage-line words that click does not pass through gettext
([OPTIONS], COMMAND, argument and type names) are set on the command tree by `localise`."""
from __future__ import annotations

import gettext
import sys

import click

from bot.texts import Texts


class ChineseCatalog(gettext.NullTranslations):
    """Chinese has no plural forms: one translation, keyed by the singular msgid, serves both."""

    def __init__(self, messages: dict[str, str]) -> None:
        super().__init__()
        self.messages = messages

    def gettext(self, message: str) -> str:
        return self.messages.get(message, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        fallback = singular if n == 1 else plural
        return self.messages.get(singular, fallback)


def install(texts: Texts) -> ChineseCatalog:
    """Make click speak Chinese. Call before commands are declared: click.Path names itself then."""
    catalog = ChineseCatalog(texts.raw("click_messages"))
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] != "click":
            continue
        if getattr(module, "_", None) is gettext.gettext:
            module._ = catalog.gettext  # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) is gettext.ngettext:
            module.ngettext = catalog.ngettext  # type: ignore[attr-defined]
    return catalog


def localise(root: click.Command, texts: Texts) -> None:
    """The usage words click does not translate, on every command under `root`; -h beside --help."""
    root.context_settings.setdefault("help_option_names", ["-h", "--help"])
    metavars: dict[str, str] = texts.raw("click_metavars")
    _localise(root, texts, metavars)


def _localise(command: click.Command, texts: Texts, metavars: dict[str, str]) -> None:
    if command.options_metavar == "[OPTIONS]":
        command.options_metavar = texts.get("click_options_metavar")
    for param in command.params:
        if isinstance(param, click.Argument):
            param.metavar = param.metavar or metavars.get(param.name or "")
        elif not (param.metavar or getattr(param, "is_flag", False) or isinstance(param.type, click.Choice)):
            param.metavar = metavars.get(param.type.name)  # an option's value: by its type
    if isinstance(command, click.Group):
        command.subcommand_metavar = texts.get("click_subcommand_metavar")
        for subcommand in command.commands.values():
            _localise(subcommand, texts, metavars)
