"""Study reports: the paper's tables and figures, significance tests and the published numbers side by side,
as Markdown, one self-contained HTML file, PNG figures and CSV tables."""

from ferlab.report.build import write_report

__all__ = ["write_report"]
