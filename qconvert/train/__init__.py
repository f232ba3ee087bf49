"""Training stage: data input and quantization-aware fine-tuning."""

from .data import Dataset, check_fits_model, load_data
from .qat import Metrics, TrainOptions, TrainResult, evaluate, fine_tune

__all__ = ["Dataset", "Metrics", "TrainOptions", "TrainResult", "check_fits_model", "evaluate", "fine_tune", "load_data"]
