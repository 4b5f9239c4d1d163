"""Models-from-code entry point: MLflow runs this file when it loads a custscore model."""
import mlflow

from custscore.training.bundle import ScorerModel

mlflow.models.set_model(ScorerModel())
