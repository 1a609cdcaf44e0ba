"""mpbench: ablations and searches of the video motion prompt layer (Chen et al., ACML 2024).

Importing the package is cheap: torch, mlflow, optuna and pytorchvideo are imported only by the
modules that need them, so that ``mpbench --help`` answers at once.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
