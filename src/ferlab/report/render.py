"""Render one list of report blocks twice: Markdown (figures as linked PNG files) and a single
self-contained HTML file (figures inlined as base64 PNG, inline CSS, no scripts and no external URLs, so it
can be mailed or archived and opens offline without console errors)."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Image:
    path: str  # relative to the report directory
    png: bytes
    alt: str
    caption: str = ""


Block = Heading | Text | Table | Image

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:24px 32px;background:#fff}
h1{font-size:1.7em;border-bottom:2px solid #d0d7de;padding-bottom:.3em}
h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
h3{font-size:1.08em;margin-top:1.5em}
p{line-height:1.5}
.scroll{overflow-x:auto;margin:.6em 0 1.2em}
table{border-collapse:collapse;font-size:.86em;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:right}
td{white-space:nowrap}
th{background:#eef1f4;vertical-align:bottom;max-width:7.5em}
.l{text-align:left}
tr:nth-child(even) td{background:#f9fafb}
.caption,figcaption{color:#57606a;font-size:.85em;line-height:1.4;margin:-.6em 0 1.4em}
figure{margin:.6em 0 1.4em}
figure img{max-width:100%;height:auto;display:block;border:1px solid #eaeef2}
figcaption{margin:.4em 0 0}
"""


# Numbers, CIs "[a, b]", p-values "<0.001" and dashes are right-aligned; a column of anything else reads better left.
_NUMERIC = re.compile(r"^(?:[\[<+-]*\d.*|—|)$")


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            out.append(block.text)
        elif isinstance(block, Table):
            frame = block.frame
            lines = ["| " + " | ".join(_md_cell(c) for c in frame.columns) + " |",
                     "|" + "|".join("---" for _ in frame.columns) + "|"]
            lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
            out.append("\n".join(lines) + (f"\n\n*{block.caption}*" if block.caption else ""))
        else:
            out.append(f"![{block.alt}]({block.path})" + (f"\n\n*{block.caption}*" if block.caption else ""))
    return "\n\n".join(out) + "\n"


def _html_table(table: Table) -> str:
    esc = html.escape
    frame = table.frame.astype(str)
    align = ["" if all(_NUMERIC.match(v) for v in frame[c]) else ' class="l"' for c in frame.columns]
    head = "".join(f"<th{a}>{esc(str(c))}</th>" for a, c in zip(align, frame.columns, strict=True))
    body = "".join("<tr>" + "".join(f"<td{a}>{esc(v)}</td>" for a, v in zip(align, row, strict=True)) + "</tr>"
                   for row in frame.itertuples(index=False))
    caption = f'<p class="caption">{esc(table.caption)}</p>' if table.caption else ""
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{caption}'


def to_html(blocks: list[Block], title: str) -> str:
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Table):
            parts.append(_html_table(block))
        else:
            data = base64.b64encode(block.png).decode("ascii")
            caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.alt)}">{caption}</figure>')
    # The empty data: icon stops the browser requesting /favicon.ico (a console error on file://).
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><link rel=\"icon\" href=\"data:,\"><style>{CSS}</style></head>\n"
            "<body><main>\n" + "\n".join(parts) + "\n</main></body></html>\n")
