"""custscore: customer churn and lifetime-value scoring.

Sub-packages (each a top-level folder of the repository):

- ``custscore.features``  transaction log -> per-customer features (pure functions)
- ``custscore.training``  BG/NBD, Gamma-Gamma, churn classifier, MLflow packaging
- ``custscore.serving``   batch scoring from a registered model
"""

__version__ = "0.1.0"
