"""Plain-text tables: one layout for every table the suite prints."""

from __future__ import annotations


def is_fraction(metric: str) -> bool:
    """Accuracies, attack rates and AUCs (values in [0, 1]) are shown in percent."""
    return metric.endswith(("/acc", "/best_acc")) or metric.startswith("mia/")


def align(header: list[str], rows: list[list[str]]) -> str:
    """First column left-aligned, the others right-aligned, a rule under the header."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = [" | ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(line, widths))) for line in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
