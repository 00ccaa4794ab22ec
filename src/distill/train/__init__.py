from distill.train.trainer import FitResult, MetricsLog, Trainer, input_preparer

__all__ = ["FitResult", "MetricsLog", "Trainer", "input_preparer"]
