"""docs/cli.md, rendered from the argparse parser of custscore/cli.py (so it cannot drift).

``python tests/cli_reference.py > docs/cli.md`` regenerates the page after a CLI option
changes; tests/test_docs.py checks that the committed file equals this rendering.
"""
from __future__ import annotations

import argparse
import os

from mlproject_spec import subcommands

#: Usage lines are wrapped at this width whatever the terminal (the page must not depend on it).
WIDTH = 100
HEADER = """# CLI reference

<!-- Generated from custscore/cli.py by `python tests/cli_reference.py > docs/cli.md`;
     tests/test_docs.py fails when this file differs from the parser. Do not edit by hand. -->

Every command prints a bad input or a bad option as one line on stderr and exits with
status 2 ([bad-input table](inputs.md#bad-input)); `drift` exits 3 when a threshold is
crossed. Defaults are defined once, in `custscore/config.py`. Each command also takes
`-h`/`--help`.
"""


def _cell(text: str) -> str:
    """Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _text(text: str) -> str:
    """Help text as literal Markdown: ``*``, ``_``, brackets and ``<`` escaped (``10**-D`` is no emphasis)."""
    for char in "\\*_[]<":
        text = text.replace(char, "\\" + char)
    return _cell(text)


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if action.default is None or action.default is argparse.SUPPRESS or isinstance(action, argparse._StoreTrueAction):
        return ""
    return f"`{action.default}`"


def _command(name: str, help_text: str, parser: argparse.ArgumentParser) -> list[str]:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=WIDTH)
    formatter = parser._get_formatter()
    lines = [f"## `custscore {name}`", "", help_text[0].upper() + help_text[1:] + ".", "", "```text",
             parser.format_usage().strip(), "```"]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        title = "options" if group.title in ("options", "optional arguments") else group.title
        lines += ["", f"**{title}**" + (f": {group.description}" if group.description else ""), "",
                  "| option | default | meaning |", "|---|---|---|"]
        for action in actions:
            invocation = formatter._format_action_invocation(action)
            meaning = formatter._expand_help(action) if action.help else ""
            lines.append(f"| `{_cell(invocation)}` | {_cell(_default(action))} | {_text(meaning)} |")
    return lines + [""]


def render() -> str:
    """The page: a header, then one section per command in the parser's order."""
    from custscore.config import ADMIN_TOKEN_ENV

    os.environ.pop(ADMIN_TOKEN_ENV, None)  # serve's --admin-token default reads it: never render a token
    sub = subcommands()
    helps = {a.dest: a.help for a in sub._choices_actions}
    body = [line for name, parser in sub.choices.items() for line in _command(name, helps[name], parser)]
    return HEADER + "\n" + "\n".join(body)


if __name__ == "__main__":
    print(render(), end="")
