"""Temporary upload files (:mod:`medusa.core.uploads`) on a real file system: the names of
HTTP's and FTP's uploads in progress, FTP's name maker, the ``flock`` that marks a live
upload, and the walk that removes the files nobody holds locked (what it keeps, and that
it can be stopped). The servers' use of them (hidden names, 550/553 and 403 replies, the
search at start and its log lines) is tested with sockets in medusa-ftp and medusa-http."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from medusa.core.uploads import (
    FTP_TEMPORARY,
    HTTP_TEMPORARY,
    NAME_MAX,
    StaleUpload,
    ftp_temporary_name,
    http_temporary_prefix,
    is_upload_temporary,
    lock_upload,
    remove_stale_uploads,
)

FTP_TEMP = ".data.bin.0123abcd.part"
HTTP_TEMP = ".page.html.k2_x9q0z.upload"


def test_ftp_temporary_names() -> None:
    name = ftp_temporary_name("/dir/report.pdf")
    assert name.startswith("/dir/.report.pdf.")
    assert name.endswith(".part")
    assert FTP_TEMPORARY.match(name.rsplit("/", 1)[1])
    assert is_upload_temporary(name)
    assert ftp_temporary_name("/dir/report.pdf") != name
    assert ftp_temporary_name("report.pdf").startswith(".report.pdf.")


def _size(name: str) -> int:
    return len(name.encode("utf-8", "surrogateescape"))


def test_temporary_names_of_long_names_fit_name_max(tmp_path: Path) -> None:
    """Names up to NAME_MAX bytes get temporary names that fit it too (cut on a character
    boundary), match their patterns and can be created; short names are kept whole."""
    assert http_temporary_prefix("page.html") == ".page.html."
    for name in ("q" * 238, "q" * 239, "q" * 245, "q" * 255, "é" * 127, "€" * 85, "a" + "😀" * 63):
        prefix = http_temporary_prefix(name)
        http_name = prefix + "k2_x9q0z" + ".upload"
        ftp_name = ftp_temporary_name("/dir/" + name).rsplit("/", 1)[1]
        for temporary, pattern in ((http_name, HTTP_TEMPORARY), (ftp_name, FTP_TEMPORARY)):
            assert _size(temporary) <= NAME_MAX, (name, temporary)
            assert pattern.match(temporary), temporary
            assert is_upload_temporary(temporary), temporary
            kept = temporary[1 : temporary.rindex(".", 0, temporary.rindex("."))]
            assert kept, temporary
            assert name.startswith(kept), (name, kept)  # whole characters
            (tmp_path / temporary).write_bytes(b"")  # the file system takes it
            (tmp_path / temporary).unlink()
    assert ftp_temporary_name("/d/" + "q" * 240).startswith("/d/." + "q" * 240 + ".")
    assert _size(ftp_temporary_name("/d/" + "q" * 241)) == len("/d/") + NAME_MAX
    assert http_temporary_prefix("q" * 238) == "." + "q" * 238 + "."
    assert http_temporary_prefix("q" * 239) == "." + "q" * 238 + "."
    # A byte that was not UTF-8 (kept by surrogateescape) counts as one.
    raw = "\udcff" * 250
    assert _size(http_temporary_prefix(raw)) == 2 + 238


def test_names_of_uploads_in_progress() -> None:
    for hidden in (
        ".a.0123abcd.part",
        ".a b.0123abcd.part",
        ".x.k2_x9q0z.upload",
        "/d/.a.ffffffff.part",
        "/d/.x.k2_x9q0z.upload",
    ):
        assert is_upload_temporary(hidden), hidden
    for shown in (
        "a.0123abcd.part",
        ".a.0123abcd.part.txt",
        ".a.0123ABCD.part",
        ".a.0123abc.part",
        ".0123abcd.part",
        ".part",
        ".a.k2-x9q0z.upload",
        "x.k2_x9q0z.upload",
        ".profile",
        "/.a.0123abcd.part/x",
    ):
        assert not is_upload_temporary(shown), shown


def make(path: Path, data: bytes = b"half an upload") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def after_all(*paths: Path) -> float:
    """A ``before`` that makes every one of ``paths`` count as older than the search."""
    return max(p.stat().st_ctime for p in paths) + 1


def test_stale_files_are_removed_and_reported(tmp_path: Path) -> None:
    stale = make(tmp_path / "sub" / "deeper" / FTP_TEMP, b"x" * 24)
    other = make(tmp_path / HTTP_TEMP)  # the other protocol's pattern
    plain = make(tmp_path / "data.bin")
    st = stale.stat()
    removed = remove_stale_uploads([tmp_path], FTP_TEMPORARY, before=after_all(stale))
    assert removed == [StaleUpload(os.path.realpath(stale), 24, st.st_mtime)]
    assert not stale.exists()
    assert other.exists()
    assert plain.exists()
    removed = remove_stale_uploads([str(tmp_path)], HTTP_TEMPORARY, before=after_all(other))
    assert [r.path for r in removed] == [os.path.realpath(other)]
    assert plain.exists()


def test_a_locked_upload_is_kept(tmp_path: Path) -> None:
    live = make(tmp_path / FTP_TEMP)
    fd = os.open(live, os.O_RDWR)
    try:
        assert lock_upload(fd)
        assert remove_stale_uploads([tmp_path], FTP_TEMPORARY, before=after_all(live)) == []
        assert live.exists()
    finally:
        os.close(fd)  # the lock goes with the descriptor
    removed = remove_stale_uploads([tmp_path], FTP_TEMPORARY, before=after_all(live))
    assert len(removed) == 1
    assert not live.exists()


def test_files_made_since_the_search_began_are_kept(tmp_path: Path) -> None:
    recent = make(tmp_path / FTP_TEMP)
    before = recent.stat().st_ctime  # made at the very moment the search began
    assert remove_stale_uploads([tmp_path], FTP_TEMPORARY, before=before) == []
    assert recent.exists()


def test_links_and_other_kinds_of_file_are_kept(tmp_path: Path) -> None:
    outside = make(tmp_path / "outside" / FTP_TEMP)
    root = tmp_path / "root"
    root.mkdir()
    (root / ".link.txt.0123abcd.part").symlink_to(outside)
    (root / "linked").symlink_to(outside.parent, target_is_directory=True)
    os.mkfifo(root / ".pipe.0123abcd.part")
    (root / ".dir.0123abcd.part").mkdir()
    before = after_all(outside, root / ".pipe.0123abcd.part", root / ".dir.0123abcd.part")
    assert remove_stale_uploads([root], FTP_TEMPORARY, before=before) == []
    assert outside.exists()
    assert sorted(p.name for p in root.iterdir()) == [
        ".dir.0123abcd.part",
        ".link.txt.0123abcd.part",
        ".pipe.0123abcd.part",
        "linked",
    ]


def test_roots_inside_others_are_walked_once(tmp_path: Path) -> None:
    stale = [make(tmp_path / FTP_TEMP), make(tmp_path / "a" / "b" / FTP_TEMP)]
    roots = [tmp_path / "a", tmp_path, tmp_path / "a" / "b", tmp_path / "a" / ".." / "a"]
    removed = remove_stale_uploads(roots, FTP_TEMPORARY, before=after_all(*stale))
    assert sorted(r.path for r in removed) == sorted(os.path.realpath(p) for p in stale)


def test_the_walk_can_be_stopped(tmp_path: Path) -> None:
    stale = make(tmp_path / "sub" / FTP_TEMP)
    stop = threading.Event()
    stop.set()  # the server stopped before the walk began
    assert remove_stale_uploads([tmp_path], FTP_TEMPORARY, before=after_all(stale), stop=stop) == []
    assert stale.exists()
    stop.clear()
    removed = remove_stale_uploads([tmp_path], FTP_TEMPORARY, before=after_all(stale), stop=stop)
    assert len(removed) == 1
