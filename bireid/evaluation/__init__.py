"""Re-ID evaluation: distances, CMC/mAP/mINP (Market-1501 protocol), k-reciprocal re-ranking, feature
extraction. Metrics are fractions in [0, 1]."""

from .distance import METRICS, compute_distance
from .evaluator import evaluate, evaluate_features, extract_features, format_results
from .metrics import RankResult, evaluate_rank
from .rerank import k_reciprocal_rerank

__all__ = [
    "METRICS",
    "RankResult",
    "compute_distance",
    "evaluate",
    "evaluate_features",
    "evaluate_rank",
    "extract_features",
    "format_results",
    "k_reciprocal_rerank",
]
