"""GitHub Markdown tables, written one way for the report, the aggregate and the study status.

Neither ``rich.box.MARKDOWN`` nor ``pandas.DataFrame.to_markdown`` (which needs ``tabulate``)
writes the same text: both pad every cell to its column's width, so a row is no longer
findable by its cells (``| x3d_xs | baseline |``) and a long error line widens every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table: ``header``, the rule, one line per row (``|`` as ``/``)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *map(line, rows)]
