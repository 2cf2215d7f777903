"""Reading Prometheus text the way Prometheus does (``prometheus_client.parser``).

Imported by tests as ``metricsupport``.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a ``/metrics`` body: ``{(name, labels): value}``."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    """The sample ``name{labels}``; 0 when absent (a labelled counter not yet counted)."""
    return found.get((name, frozenset(labels.items())), 0.0)


def exported_names(text: str) -> set[str]:
    """The sample names a ``/metrics`` body declares, including families without samples
    yet (a labelled counter nobody counted): counters as ``<name>_total``, histograms as
    ``_bucket``, ``_sum`` and ``_count``, summaries as ``_sum`` and ``_count``."""
    names: set[str] = set()
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count", ""),
    }
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every label set that includes ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)
