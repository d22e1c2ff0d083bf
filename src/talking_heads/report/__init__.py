"""Report: the survey's tables with our rows beside them, and the comparison figures.

``TABLES`` maps ``table1``/``table2``/``table3`` to their builders; figures live in
:mod:`talking_heads.report.figures`.
"""

from talking_heads.report.tables import TABLES, TableSpec, build_table2, survey_table

__all__ = ["TABLES", "TableSpec", "build_table2", "survey_table"]
