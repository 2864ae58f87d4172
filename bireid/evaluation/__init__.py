"""Evaluation: re-ID's distances, CMC/mAP/mINP (Market-1501 protocol), k-reciprocal re-ranking and feature
extraction; the classification tasks' top-k and mean class accuracy. Metrics are fractions in [0, 1]."""

from .classification import class_accuracy, classification_metrics, format_classification, predict, topk_correct
from .distance import METRICS, compute_distance
from .evaluator import evaluate, evaluate_features, extract_features, format_results
from .metrics import RankResult, evaluate_rank
from .rerank import k_reciprocal_rerank

__all__ = [
    "METRICS",
    "RankResult",
    "class_accuracy",
    "classification_metrics",
    "compute_distance",
    "evaluate",
    "evaluate_features",
    "evaluate_rank",
    "extract_features",
    "format_classification",
    "format_results",
    "k_reciprocal_rerank",
    "predict",
    "topk_correct",
]
