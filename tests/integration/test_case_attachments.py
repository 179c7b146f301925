"""Files with a case's progress and result, through the real app over a real database and a real store folder:
photos and PDFs are kept by content and shown to whoever may see the case; a file that is not what it says, too
large, too many, empty, or posted with a hostile name is refused (or its name cleaned) and changes nothing; the
upload size is refused before it is read; other departments never get the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from callcenter.store.attachments import clean_name
from callcenter.store.db import Database
from callcenter.store.models import CaseAttachment, CaseUpdate
from tests.factories import PDF, png
from tests.integration.test_cases_web import as_user, open_case, users  # noqa: F401 (fixture)
from tests.webclient import add_call, client, form_post, settings_for, sign_in


def counts(db: Database) -> tuple[int, int]:
    with db.session() as session:
        return (session.scalar(select(func.count()).select_from(CaseUpdate)) or 0,
                session.scalar(select(func.count()).select_from(CaseAttachment)) or 0)


def stored(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "attachments").rglob("*") if p.is_file())


@pytest.fixture
def case(db: Database, tmp_path: Path, users: None) -> str:  # noqa: F811 (the fixture imported above)
    call_id, _ = add_call(db, 2, operator="op101", number="0905111222")
    return open_case(as_user(db, tmp_path, "op101"), call_id)


def test_a_department_posts_photos_and_a_document_that_whoever_sees_the_case_can_open(
        db: Database, tmp_path: Path, case: str) -> None:
    department = as_user(db, tmp_path, "env1")
    photo = png()
    status, where = form_post(department, f"/cases/{case}/progress", [("bờ kênh.png", photo, "image/png"),
                                                                   ("biên bản.pdf", PDF, "application/pdf")],
                           text="Đã khảo sát hiện trường")
    assert (status, where) == (303, f"/cases/{case}")
    page = department.get(f"/cases/{case}").text
    assert 'data-file="bờ kênh.png"' in page and 'data-file="biên bản.pdf"' in page
    with db.session() as session:
        rows = session.scalars(select(CaseAttachment).order_by(CaseAttachment.id)).all()
        ids = [(r.id, r.content_type, r.size, r.uploaded_by) for r in rows]
    assert [i[1:] for i in ids] == [("image/png", len(photo), "env1"), ("application/pdf", len(PDF), "env1")]
    shown = department.get(f"/cases/{case}/files/{ids[0][0]}")
    assert shown.status_code == 200 and shown.content == photo
    assert shown.headers["content-type"] == "image/png" and shown.headers["content-disposition"].startswith("inline")
    document = as_user(db, tmp_path, "super1").get(f"/cases/{case}/files/{ids[1][0]}")
    assert document.content == PDF and document.headers["content-disposition"].startswith("attachment")
    assert document.headers["x-content-type-options"] == "nosniff"

    # the result, with a photo already kept: a second row, the same stored file
    status, _ = form_post(department, f"/cases/{case}/status", [("xong.png", photo, "image/png")], to="in_progress")
    status, _ = form_post(department, f"/cases/{case}/status", [("xong.png", photo, "image/png")], to="resolved",
                       text="Đã thu gom xong")
    assert status == 303
    with db.session() as session:
        last = session.scalars(select(CaseUpdate).order_by(CaseUpdate.id.desc())).first()
        assert last is not None and last.to_status == "resolved"
        assert session.scalar(select(func.count()).select_from(CaseAttachment)
                              .where(CaseAttachment.update_id == last.id)) == 1
    assert len(stored(tmp_path)) == 2  # the PNG once (by its digest), the PDF


def test_other_departments_and_strangers_never_get_a_file(db: Database, tmp_path: Path, case: str) -> None:
    form_post(as_user(db, tmp_path, "env1"), f"/cases/{case}/progress", [("a.png", png(), "image/png")], text="ảnh")
    with db.session() as session:
        file_id = session.scalars(select(CaseAttachment.id)).one()
    assert as_user(db, tmp_path, "urban1").get(f"/cases/{case}/files/{file_id}").status_code == 404
    anonymous = client(db, settings_for(tmp_path)).get(f"/cases/{case}/files/{file_id}", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/sign-in")
    operator = as_user(db, tmp_path, "op101")
    assert operator.get(f"/cases/{case}/files/{file_id}").status_code == 200
    assert operator.get(f"/cases/{case}/files/{file_id + 1}").status_code == 404
    assert operator.get(f"/cases/{case}/files/99999999999999999999").status_code == 404
    assert operator.get(f"/cases/{case}/files/-1").status_code == 404


@pytest.mark.parametrize(("files", "problem"), [
    ([("photo.png", b"<script>alert(1)</script>", "image/png")], "photo.png: not a JPEG, PNG, WebP photo or a PDF"),
    ([("setup.pdf", b"MZ\x90\x00" + b"\x00" * 200, "application/pdf")], "setup.pdf: not a JPEG, PNG"),
    ([("empty.png", b"", "image/png")], "empty.png: the file is empty"),
    ([("big.png", png() + b"\x00" * 5000, "image/png")], "big.png: larger than"),
    ([(f"{n}.png", png(), "image/png") for n in range(3)], "at most 2 files at a time"),
])
def test_a_wrong_file_is_refused_with_the_reason_and_changes_nothing(
        db: Database, tmp_path: Path, case: str, files: list[tuple[str, bytes, str]], problem: str) -> None:
    settings = settings_for(tmp_path)
    settings.cases = settings.cases.model_copy(update={"attachment_max_bytes": 4096, "attachments_per_update": 2})
    department = sign_in(client(db, settings), "env1")
    before = counts(db)
    status, said = form_post(department, f"/cases/{case}/progress", files, text="kèm ảnh")
    assert status == 303 and said.startswith(problem), said
    assert counts(db) == before and stored(tmp_path) == []


def test_a_hostile_file_name_is_only_a_label(db: Database, tmp_path: Path, case: str) -> None:
    department = as_user(db, tmp_path, "env1")
    status, _ = form_post(department, f"/cases/{case}/progress",
                       [("../../../etc/cron.d/x\r\n.png", png(), "image/png"), ("\x00\u202e.png", png(3), "image/png")],
                       text="tên tệp lạ")
    assert status == 303
    with db.session() as session:
        names = session.scalars(select(CaseAttachment.name).order_by(CaseAttachment.id)).all()
    assert names[0].startswith("x") and all("/" not in n and "\x00" not in n for n in names)  # no folders
    assert all(p.parent.parent == tmp_path / "attachments" and len(p.name) == 64 for p in stored(tmp_path))
    assert not (tmp_path.parent / "etc").exists()


@pytest.mark.parametrize(("given", "kept"), [
    ("../../../etc/cron.d/x\r\n.png", "x.png"), ("C:\\Users\\an\\ảnh hiện trường.jpg", "ảnh hiện trường.jpg"),
    ("\x00\u202egnp.exe", "gnp.exe"), ("...", "attachment.png"), ("a" * 300 + ".pdf", "a" * 120),
])
def test_a_file_name_is_cleaned_of_folders_and_control_characters(given: str, kept: str) -> None:
    assert clean_name(given, "image/png") == kept


def test_an_upload_too_large_or_without_its_token_is_refused_before_it_is_read(
        db: Database, tmp_path: Path, case: str) -> None:
    settings = settings_for(tmp_path)
    settings.cases = settings.cases.model_copy(update={"attachment_max_bytes": 4096, "attachments_per_update": 1})
    department = sign_in(client(db, settings), "env1")
    before = counts(db)
    huge = department.post(f"/cases/{case}/progress", data={"csrftoken": department.cookies.get("csrftoken", ""),
                                                            "text": "x"},
                           files=[("files", ("big.pdf", PDF + b"\x00" * (2 * 1024 * 1024), "application/pdf"))])
    assert huge.status_code == 413 and "at most" in huge.text
    no_token = department.post(f"/cases/{case}/progress", data={"text": "x"},
                               files=[("files", ("a.png", png(), "image/png"))])
    assert no_token.status_code == 403
    wrong = department.post(f"/cases/{case}/progress", data={"csrftoken": "forged", "text": "x"},
                            files=[("files", ("a.png", png(), "image/png"))])
    assert wrong.status_code == 403
    late = department.post(f"/cases/{case}/progress", files=[("files", ("a.png", png(), "image/png")),
                                                            ("csrftoken", (None, department.cookies["csrftoken"]))])
    assert late.status_code == 403  # a token after the files is not looked for
    for content_type, body in (("multipart/form-data", b"--x\r\n"), ("multipart/form-data; boundary=x",
                                                                       b"garbage without a boundary line\r\n")):
        unreadable = department.post(f"/cases/{case}/progress", content=body,
                                     headers={"Content-Type": content_type})
        assert unreadable.status_code == 400 and unreadable.text.startswith("the form cannot be read"), (
            content_type, unreadable.status_code, unreadable.text)
    assert counts(db) == before and stored(tmp_path) == []


@pytest.mark.parametrize(("language", "count", "shown"), [
    ("en", 0, "0 B"), ("en", 1023, "1023 B"), ("en", 1024, "1 KB"), ("vi", 35_000, "34 KB"),
    ("en", 2_500_000, "2.4 MB"), ("vi", 2_500_000, "2,4 MB"),
])
def test_a_file_size_reads_in_the_users_language(language: str, count: int, shown: str) -> None:
    from callcenter.web.i18n import Formats

    assert Formats(language, "Asia/Ho_Chi_Minh").size(count) == shown
