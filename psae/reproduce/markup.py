"""The report's two renderings, built side by side: a self-contained HTML page and its
Markdown twin. :class:`Doc` collects headings, paragraphs, tables, figures and collapsed
sections once and writes both; text is escaped here, never by the callers."""

from __future__ import annotations

import base64
import contextlib
import html
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Text", "Cell", "Doc", "data_uri", "md_escape", "md_href"]


@dataclass(frozen=True)
class Text:
    """A run of text: plain, bold, and/or a link (``href`` relative to the report)."""

    text: str
    bold: bool = False
    href: str | None = None


# a table cell or inline part: plain text, (text, bold), or Text
Cell = str | tuple | Text


def _text(c: Cell) -> Text:
    if isinstance(c, Text):
        return c
    if isinstance(c, tuple):
        return Text(str(c[0]), bool(c[1]))
    return Text(str(c))


def md_escape(text: str) -> str:
    """Escape Markdown/HTML metacharacters for a table cell, heading or inline text: every
    string from a user (a file name, a class name) passes through here."""
    for ch in "\\|<>*`[]":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def md_href(href: str) -> str:
    """A relative link target for Markdown: percent-encoded, so that a file name cannot close
    the link or open a tag."""
    return urllib.parse.quote(href, safe="/#.-_~")


def _html_inline(c: Cell) -> str:
    t = _text(c)
    out = html.escape(t.text)
    if t.text in ("✓", "✗"):
        out = f'<span class="{"ok" if t.text == "✓" else "bad"}">{out}</span>'
    if t.bold and t.text:
        out = f"<b>{out}</b>"
    if t.href:
        out = f'<a href="{html.escape(t.href)}">{out}</a>'
    return out


def _md_inline(c: Cell) -> str:
    t = _text(c)
    out = md_escape(t.text)
    if t.bold and out:
        out = f"**{out}**"
    if t.href:
        out = f"[{out}]({md_href(t.href)})"
    return out


def data_uri(path: Path) -> str | None:
    """A PNG file as a base64 ``data:`` URI (None when it cannot be read)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


class Doc:
    """An HTML body and a Markdown document, appended to in step."""

    def __init__(self) -> None:
        self.h: list[str] = []
        self.md: list[str] = []

    def heading(self, level: int, text: str, anchor: str | None = None) -> None:
        ident = f' id="{html.escape(anchor)}"' if anchor else ""
        self.h.append(f"<h{level}{ident}>{html.escape(text)}</h{level}>")
        self.md.append("#" * level + " " + md_escape(text) + "\n")

    def para(self, *parts: Cell, css: str | None = None) -> None:
        """A paragraph of text runs (plain strings, or :class:`Text` for bold and links)."""
        cls = f' class="{css}"' if css else ""
        self.h.append(f"<p{cls}>" + "".join(_html_inline(p) for p in parts) + "</p>")
        self.md.append("".join(_md_inline(p) for p in parts) + "\n")

    def raw_html(self, text: str, md: str = "") -> None:
        """HTML made by the caller (already escaped), and its Markdown counterpart."""
        self.h.append(text)
        if md:
            self.md.append(md)

    def bullets(self, items: Sequence[str]) -> None:
        self.h.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
        self.md.append("\n".join(f"- {md_escape(i)}" for i in items) + "\n")

    def table(self, headers: list[str], rows: list[list[Cell]], numeric_from: int = 99,
              empty: str = "", css: str | None = None, anchor: str | None = None) -> None:
        """A table; with no rows, the ``empty`` sentence instead (when given)."""
        if not rows and empty:
            self.para(empty)
            return
        attrs = (f' class="{css}"' if css else "") + (f' id="{anchor}"' if anchor else "")
        # wrapped so that a wide table scrolls inside the page instead of overflowing it
        out = [f'<div class="table-wrap"><table{attrs}>',
               "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"]
        for row in rows:
            num = ' class="num"'
            tds = [f"<td{num if i >= numeric_from else ''}>{_html_inline(c)}</td>"
                   for i, c in enumerate(row)]
            out.append("<tr>" + "".join(tds) + "</tr>")
        self.h.append("\n".join(out + ["</table></div>"]))
        md = ["| " + " | ".join(md_escape(h) for h in headers) + " |",
              "|" + "|".join("---" for _ in headers) + "|"]
        md += ["| " + " | ".join(_md_inline(c) for c in row) + " |" for row in rows]
        self.md.append("\n".join(md) + "\n")

    def figure(self, uri: str, rel: str, caption: str, links: Sequence[Cell] = (),
               css: str | None = None) -> None:
        """An embedded PNG (``uri``) in HTML, a link to ``rel`` in Markdown, with its caption
        and a line of links under it."""
        stem = Path(rel).stem
        more = "".join(_html_inline(c) for c in links)
        cls = f' class="{css}"' if css else ""
        self.h.append(f'<figure{cls}><img src="{uri}" alt="{html.escape(stem)}">'
                      f"<figcaption>{html.escape(caption)}"
                      + (f'<br><span class="explore">{more}</span>' if more else "")
                      + "</figcaption></figure>")
        self.md.append(f"![{md_escape(stem)}]({md_href(rel)})\n\n*{md_escape(caption)}*\n"
                       + ("\n" + "".join(_md_inline(c) for c in links) + "\n" if links else ""))

    @contextlib.contextmanager
    def details(self, summary: str, md_level: int = 3) -> Iterator[None]:
        """A collapsed section in HTML (``<details>``); a plain section in Markdown."""
        self.h.append(f"<details><summary>{html.escape(summary)}</summary>")
        self.md.append("#" * md_level + " " + md_escape(summary) + "\n")
        yield
        self.h.append("</details>")

    def page(self, title: str, css: str) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{html.escape(title)}</title>\n<style>{css}</style>\n</head>\n<body>\n"
                + "\n".join(self.h) + "\n</body>\n</html>\n")

    def markdown(self) -> str:
        return "\n".join(self.md)
