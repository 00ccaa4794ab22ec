from distill.evaluate.cost import latency_ms, model_cost, size_on_disk
from distill.evaluate.metrics import classification_metrics
from distill.models.predict import predict

__all__ = ["classification_metrics", "latency_ms", "model_cost", "predict", "size_on_disk"]
