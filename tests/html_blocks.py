"""Read the answer blocks (``<div class="qa">``) of the demo report: their marks and text."""

from __future__ import annotations

from html.parser import HTMLParser


class QaBlocks(HTMLParser):
    """For each ``<div class="qa">``: the text of every <mark>, and the whole text, by line."""

    def __init__(self):
        super().__init__()
        self.blocks: list[dict] = []
        self._in_block = self._in_mark = False
        self._marks_outside = 0

    def handle_starttag(self, tag, attrs):
        if tag == "div" and ("class", "qa") in attrs:
            self._in_block = True
            self.blocks.append({"marks": [], "paragraphs": []})
        elif tag == "mark":
            self._in_mark = True
            if self._in_block:
                self.blocks[-1]["marks"].append("")
            else:
                self._marks_outside += 1
        elif tag == "p" and self._in_block:
            self.blocks[-1]["paragraphs"].append("")

    def handle_endtag(self, tag):
        if tag == "div":
            self._in_block = False
        elif tag == "mark":
            self._in_mark = False

    def handle_data(self, data):
        if not self._in_block:
            return
        block = self.blocks[-1]
        if self._in_mark:
            block["marks"][-1] += data
        if block["paragraphs"]:
            block["paragraphs"][-1] += data


def parse(page: str) -> QaBlocks:
    parser = QaBlocks()
    parser.feed(page)
    return parser
