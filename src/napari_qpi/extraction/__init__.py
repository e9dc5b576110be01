"""Extraction: the ``extract()`` pipeline, classical solvers and metrics."""

from .extract import METHODS, Extraction, Progress, extract, iter_extract

__all__ = ["METHODS", "Extraction", "Progress", "extract", "iter_extract"]
