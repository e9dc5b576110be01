"""Extraction: the ``extract()`` pipeline, classical solvers and metrics."""

from .extract import METHODS, Extraction, Progress, extract, iter_extract, register

__all__ = ["METHODS", "Extraction", "Progress", "extract", "iter_extract", "register"]
