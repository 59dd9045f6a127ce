"""report.html: one self-contained page (figures embedded as base64 PNG, no external files),
so a sweep on a remote machine can be looked at by copying a single file."""

import base64
import html

import pandas as pd

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.5em; overflow-wrap: anywhere; } h2 { font-size: 1.2em; margin-top: 2em; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
.with-key img { display: block; }  /* the key goes under it: the figure keeps the width */
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.8em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.45em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
td { white-space: nowrap; }  /* "0.2746 ± 0.0239" on one line */
td:first-child, td:last-child { white-space: normal; min-width: 8em; }
.note { color: #666; }
"""


def figure(name: str, png: bytes, caption: str, key: pd.DataFrame | None = None) -> str:
    """The figure, and under it `key`: the table that explains numbered configurations (beside
    it, the figure would shrink to share the page's width, and its text with it)."""
    data = base64.b64encode(png).decode("ascii")
    image = f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
    if key is not None:
        image = f'<div class="with-key">{image}{table(key)}</div>'
    return (f'<figure id="{html.escape(name)}">{image}<figcaption>{html.escape(caption)}'
            f"</figcaption></figure>")


def table(frame: pd.DataFrame) -> str:
    """A table that scrolls sideways inside its own box when wider than the page."""
    body = frame.to_html(index=False, border=0, na_rep="–", escape=True)
    return f'<div class="scroll">{body}</div>'



def subheading(text: str) -> str:
    return f"<h3>{html.escape(text)}</h3>"


def paragraph(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{html.escape(text)}</p>"


def page(title: str, sections: list[tuple[str, list[str]]]) -> str:
    """sections: [(heading, [html fragments])] -> the whole document."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, parts in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body += parts
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
