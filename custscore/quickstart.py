"""``custscore quickstart``: train, register and score on the embedded CDNOW sample.

Offline and serverless: the CDNOW sample ships inside the installed lifetimes package,
MLflow writes to a SQLite file in the work folder.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Optional

from custscore.config import ScoreConfig, TrainConfig
from custscore.features.cdnow import load_cdnow_sample
from custscore.serving.batch import score_file
from custscore.serving.output import write_table_atomic
from custscore.errors import warn_all
from custscore.training.summary import CDNOW_PUBLISHED, format_training_summary
from custscore.training.train import train_file

#: The paper's set-up (Fader, Hardie & Lee 2005): 39-week calibration and holdout, weeks.
QUICKSTART_CONFIG = dict(cutoff="1997-09-30", holdout_end="1998-06-30", horizon_days=90, time_unit="W",
                         register_as="custscore", experiment="custscore-quickstart")
#: The last day of the CDNOW sample: the next steps score the customers as they stand then.
LAST_DAY = "1998-06-30"


def next_commands(folder: Path, tracking_uri: str, model_uri: str) -> list[str]:
    """Commands that work from any folder after the quickstart (absolute paths, the store's
    ``--tracking-uri``): score everyone as of the sample's last day, report, serve."""
    q = shlex.quote
    store = f"--model {q(model_uri)} --tracking-uri {q(tracking_uri)}"
    scores = folder / f"scores-{LAST_DAY}.csv"
    return [f"custscore score {store} --transactions {q(str(folder / 'cdnow_sample.csv'))} --as-of {LAST_DAY} "
            f"--output {q(str(scores))}",
            f"custscore report --scores {q(str(scores))} --output {q(str(folder / 'report.html'))}",
            f"custscore serve {store}"]


def run_quickstart(workdir: str = "custscore-quickstart", tracking_uri: Optional[str] = None) -> Path:
    """Run the demo in ``workdir``; return the scores file path.

    The MLflow store is ``tracking_uri``, else (under ``mlflow run``) the run's store, else
    ``workdir/mlflow.db``.
    """
    folder = Path(workdir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    log_path = write_table_atomic(load_cdnow_sample(), folder / "cdnow_sample.csv")
    # under `mlflow run` the run to log into lives in that run's store, not in workdir
    launched = os.environ.get("MLFLOW_TRACKING_URI") if os.environ.get("MLFLOW_RUN_ID") else None
    uri = tracking_uri or launched or f"sqlite:///{folder / 'mlflow.db'}"
    config = TrainConfig(tracking_uri=uri, **QUICKSTART_CONFIG)
    print(f"training on {log_path} (CDNOW sample), calibration to {config.cutoff.date()}, "
          f"holdout to {config.holdout_end.date()}, weeks")
    result, logged = train_file(log_path, config)
    print(format_training_summary(result, logged, published=CDNOW_PUBLISHED))
    warn_all(result.warnings)
    scores_path = folder / "scores.csv"
    scores = score_file(logged.serving_uri, log_path, scores_path, ScoreConfig(as_of=config.cutoff))
    print(f"\nscored {len(scores)} customers with {logged.serving_uri} as of {config.cutoff.date()}")
    print(f"scores file:  {scores_path}")
    print(f"MLflow store: {uri}  (browse: mlflow ui --backend-store-uri {uri})")
    print("\nnext (from any folder):")
    for command in next_commands(folder, uri, logged.serving_uri):
        print(f"  {command}")
    return scores_path
