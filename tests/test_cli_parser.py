"""`custscore train --help` groups its options (data, columns, model, churn, tracking), and
every default comes from the config dataclasses (each defined once, in custscore/config.py)."""
from __future__ import annotations

import dataclasses

from custscore.cli import build_parser
from custscore.config import ColumnMap, TrainConfig
from custscore.features.database import DatabaseLog
from conftest import cli

TRAIN_GROUPS = {  # what a user looks for under each heading, written by hand
    "data": ["--transactions", "--cutoff", "--horizon-days", "--holdout-end", "--engine", "--table", "--query"],
    "transaction-log columns": ["--customer-col", "--date-col", "--amount-col", "--date-format", "--encoding",
                                "--csv-sep", "--decimal", "--amount-decimals", "--discount-col", "--arrears-col"],
    "model": ["--time-unit", "--discount-rate", "--purchase-model", "--bgnbd-penalizer", "--gg-penalizer", "--penalizer", "--covariates",
              "--seed", "--validation-sample"],
    "churn": ["--churn-calibration", "--churn-windows"],
    "tracking": ["--tracking-uri", "--experiment", "--register-as", "--promote"],
}
REQUIRED = {"transactions", "cutoff", "horizon_days"}


def _train_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["train"]


def test_train_options_are_grouped():
    groups = {g.title: [a.option_strings[0] for a in g._group_actions] for g in _train_parser()._action_groups
              if g._group_actions}
    assert groups.pop("options") == ["-h"]  # nothing left ungrouped
    assert groups == TRAIN_GROUPS


def test_train_help_shows_the_groups_in_order():
    proc = cli("train", "--help")
    assert proc.returncode == 0, proc.stderr
    headings = [line[:-1] for line in proc.stdout.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings == ["options", *TRAIN_GROUPS]


def test_train_defaults_are_the_config_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    columns = {f.name: f.default for f in dataclasses.fields(ColumnMap)}
    columns.update({f.name: f.default for f in dataclasses.fields(DatabaseLog) if f.default is not dataclasses.MISSING})
    renamed = {"customer_col": "customer", "date_col": "date", "amount_col": "amount", "discount_col": "discount",
               "arrears_col": "arrears"}
    checked = 0
    for action in _train_parser()._actions:
        if action.dest in ("help", *REQUIRED):
            continue
        if action.dest in fields:
            assert action.default == fields[action.dest], action.dest
        else:
            assert action.default == columns[renamed.get(action.dest, action.dest)], action.dest
        checked += 1
    assert checked == sum(len(v) for v in TRAIN_GROUPS.values()) - len(REQUIRED)
