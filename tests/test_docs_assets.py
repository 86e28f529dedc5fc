import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "static"
VENDOR = STATIC / "vendor"
PAGES = sorted((STATIC / "docs").glob("*.html"))


def test_vendored_files_match_their_recorded_sums():
    listed = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    present = {
        str(p.relative_to(VENDOR))
        for p in VENDOR.rglob("*")
        if p.is_file() and p.name not in ("SHA256SUMS", "README.md")
    }
    assert present == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_every_vendored_package_ships_its_license():
    for package in ("swagger-ui", "redoc"):
        assert (VENDOR / package / "LICENSE").stat().st_size > 500


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self.handlers: list[str] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]
        self.handlers += [k for k, _ in attrs if k.startswith("on")]
        if "style" in a:
            self.inline_styles += 1
        self._in_script_without_src = tag == "script" and "src" not in a
        if tag == "style":
            self.inline_styles += 1

    def handle_data(self, data):
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag):
        self._in_script_without_src = False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_doc_pages_load_only_local_files_and_nothing_inline(page):
    parser = _Refs()
    parser.feed(page.read_text())
    assert parser.refs
    assert parser.inline_scripts == 0
    assert parser.inline_styles == 0
    assert parser.handlers == []
    for ref in parser.refs:
        assert not re.match(r"^([a-z]+:)?//", ref), ref
        # Page URLs are /docs and /redoc, so relative references resolve from the root.
        assert (STATIC.parent / ref).is_file(), ref


def test_init_scripts_reference_only_local_files():
    for script in (STATIC / "docs").glob("*.js"):
        text = script.read_text()
        assert "http://" not in text and "https://" not in text, script.name
    imported = re.findall(r'from "([^"]+)"', (STATIC / "docs" / "redoc-init.js").read_text())
    assert imported == ["../vendor/redoc/redoc.standalone.js"]
    assert (STATIC / "docs" / imported[0]).resolve().is_file()
