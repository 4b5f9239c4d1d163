"""The MLproject entry points as the CLI defines them: one parameter per option.

``python tests/mlproject_spec.py > MLproject`` regenerates the file after a CLI option
changes; tests/test_project.py checks that the file equals this rendering.
"""
from __future__ import annotations

import argparse

from custscore.cli import build_parser

#: Commands with an entry point (serve runs a server; rfm and report are not MLflow jobs).
ENTRY_POINTS = ("train", "score", "evaluate", "drift", "backtest", "quickstart")
#: Options naming an input file: MLflow type ``path`` (resolved to an absolute path).
PATH_OPTIONS = ("transactions", "scores", "reference", "current")


#: Options whose MLflow parameter has another name: ``mlflow run`` logs every entry-point
#: parameter as a run param, and the run param ``purchase_model`` names the model the scores
#: use (``auto`` resolves to one), so the option is logged as what was requested.
RENAMED = {"purchase_model": "purchase_model_requested"}


def subcommands(parser: argparse.ArgumentParser | None = None) -> argparse._SubParsersAction:
    """The CLI's subcommands action: ``.choices`` maps a command to its parser (shared with
    tests/cli_reference.py)."""
    parser = parser or build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _subparser(name: str) -> argparse.ArgumentParser:
    return subcommands().choices[name]


def entry_point(name: str) -> dict:
    """``{"parameters": {...}, "command": "..."}``: each option's default as text, None as ''."""
    parameters, command = {}, [f"custscore {name}"]
    for action in _subparser(name)._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        option = action.option_strings[-1]
        param = option.lstrip("-").replace("-", "_")
        param = RENAMED.get(param, param)
        kind = "path" if param in PATH_OPTIONS else "string"
        if action.required:
            parameters[param] = kind
        else:
            parameters[param] = {"type": kind, "default": "" if action.default is None else str(action.default)}
        command.append(f"{option} {{{param}}}")
    return {"parameters": parameters, "command": " ".join(command)}


def render() -> str:
    """The MLproject file: a header comment, then every entry point in YAML."""
    import yaml

    header = ("# Generated from the CLI by `python tests/mlproject_spec.py > MLproject`: one parameter per\n"
              "# option, named as the option with underscores, defaults from custscore/config.py ('' = not given).\n"
              "# mlflow run . -e train --env-manager local -P transactions=log.csv -P cutoff=1997-09-30 \\\n"
              "#     -P horizon_days=90 -P time_unit=W -P register_as=custscore\n")
    body = {"name": "custscore", "entry_points": {name: entry_point(name) for name in ENTRY_POINTS}}
    return header + yaml.safe_dump(body, sort_keys=False, width=10_000)


if __name__ == "__main__":
    print(render(), end="")
