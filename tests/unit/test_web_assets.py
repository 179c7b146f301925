"""The web app's own assets and catalogs: every vendored file is the one scripts/vendor.sh fetched, no template
loads anything from another site or runs inline script, and every message has its Vietnamese translation."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from babel.messages.pofile import read_po

from callcenter.web.i18n import translations
from callcenter.web.pages import STATIC, TEMPLATES

CATALOG = Path(__file__).resolve().parents[2] / "callcenter/web/translations"


def test_vendored_files_match_their_recorded_digests() -> None:
    vendor = STATIC / "vendor"
    lines = [line.split() for line in (vendor / "VERSIONS").read_text().splitlines() if line[:1].isalnum()]
    digests = {name: digest for digest, name in (line for line in lines if line[0] not in ("package", "tool"))}
    assert {"chart.js/chart.umd.min.js", "swagger-ui/swagger-ui-bundle.js", "jssip/jssip.min.js"} <= set(digests)
    for name, digest in digests.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name


def test_templates_load_nothing_from_elsewhere_and_run_no_inline_script() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//', text), template.name
        for tag in re.findall(r"<script[^>]*>", text):
            assert 'src="/static/' in tag or 'type="application/json"' in tag, (template.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), template.name  # no inline event handlers either


def test_every_message_has_a_vietnamese_translation() -> None:
    with (CATALOG / "vi/LC_MESSAGES/messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="vi")
    with (CATALOG / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    wanted = {message.id if isinstance(message.id, str) else message.id[0] for message in template if message.id}
    translated = {message.id if isinstance(message.id, str) else message.id[0] for message in catalog
                  if message.id and message.string
                  and (message.string if isinstance(message.string, str) else message.string[0])}
    assert wanted <= translated, sorted(wanted - translated)
    assert translations("vi").gettext("Call history") == "Lịch sử cuộc gọi"
    assert translations("en").gettext("Call history") == "Call history"


def test_the_catalog_template_is_current() -> None:
    """`make translations` was run after the last change to a message in a page or a route."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        fresh = Path(folder) / "messages.pot"
        subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_",
                        "-k", "gettext", "-k", "ngettext:1,2", "-k", "N_", "--no-location", "--omit-header",
                        "-o", str(fresh), "."], cwd=CATALOG.parents[2], check=True, capture_output=True)
        with fresh.open("rb") as handle:
            current = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    with (CATALOG / "messages.pot").open("rb") as handle:
        recorded = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    assert current == recorded, ("run `make translations`", sorted(current ^ recorded))
