"""Tests of medusa.core.filesys on real temporary directories and real symbolic links."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest

from medusa.core.filesys import Filesystem, OSFilesystem, PathEscapeError


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the root, with a secret in it."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret").write_bytes(b"top secret")
    (d / "subdir").mkdir()
    return d


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    """The served tree.

    root/
      index.html            b"hello"
      pub/                  a/b/c/deep.txt, readme.txt
      etc -> /etc           absolute link out of the root
      out -> ../outside     relative link to a directory outside
      secret -> ../outside/secret
      evil -> ../root-evil  a sibling whose name starts with the root's name
      inlink -> pub         relative link that stays inside
      abslink -> <root>/pub/readme.txt   absolute link that stays inside
      dangling -> nowhere
    """
    r = tmp_path / "root"
    r.mkdir()
    (r / "index.html").write_bytes(b"hello")
    (r / "pub" / "a" / "b" / "c").mkdir(parents=True)
    (r / "pub" / "a" / "b" / "c" / "deep.txt").write_bytes(b"deep")
    (r / "pub" / "readme.txt").write_bytes(b"read me")
    evil = tmp_path / "root-evil"
    evil.mkdir()
    (evil / "secret").write_bytes(b"evil secret")
    os.symlink("/etc", r / "etc")
    os.symlink("../outside", r / "out")
    os.symlink("../outside/secret", r / "secret")
    os.symlink("../root-evil", r / "evil")
    os.symlink("pub", r / "inlink")
    os.symlink(str(r / "pub" / "readme.txt"), r / "abslink")
    os.symlink("nowhere", r / "dangling")
    return r


@pytest.fixture
def fs(root: Path) -> OSFilesystem:
    return OSFilesystem(root)


# -- construction ------------------------------------------------------------------------------


def test_is_a_filesystem(fs: OSFilesystem) -> None:
    assert isinstance(fs, Filesystem)
    typed: Filesystem = fs  # checked by mypy
    assert typed.cwd() == "/"


def test_root_is_resolved(tmp_path: Path, root: Path) -> None:
    os.symlink(root, tmp_path / "rootlink")
    fs = OSFilesystem(tmp_path / "rootlink")
    assert fs.root == os.path.realpath(root)
    assert fs.translate("/") == os.path.realpath(root)
    with fs.open("/index.html") as f:
        assert f.read() == b"hello"


def test_root_must_be_a_directory(root: Path) -> None:
    with pytest.raises(NotADirectoryError):
        OSFilesystem(root / "index.html")
    with pytest.raises(FileNotFoundError):
        OSFilesystem(root / "missing")


def test_initial_cwd(root: Path) -> None:
    assert OSFilesystem(root, cwd="/pub/a/").cwd() == "/pub/a"
    with pytest.raises(NotADirectoryError):
        OSFilesystem(root, cwd="/index.html")
    with pytest.raises(PathEscapeError):
        OSFilesystem(root, cwd="/out")


# -- normalize ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "/"),
        (".", "/"),
        ("/", "/"),
        ("//", "/"),
        ("a", "/a"),
        ("a/", "/a"),
        ("/a//b/./c/", "/a/b/c"),
        ("a/b/..", "/a"),
        ("a/../../b", "/b"),
        ("..", "/"),
        ("../..", "/"),
        ("/../../../../../../../etc/passwd", "/etc/passwd"),
        ("./../", "/"),
        ("./.././../x", "/x"),
        ("a/./b/../../..", "/"),
        ("...", "/..."),
        ("..a/a..", "/..a/a.."),
        (".hidden", "/.hidden"),
        ("/a/.hidden/", "/a/.hidden"),
    ],
)
def test_normalize_at_root(fs: OSFilesystem, path: str, expected: str) -> None:
    assert fs.normalize(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "/pub/a"),
        ("b", "/pub/a/b"),
        ("..", "/pub"),
        ("../..", "/"),
        ("../../../..", "/"),
        ("/x", "/x"),
        ("./b/../c", "/pub/a/c"),
    ],
)
def test_normalize_relative_to_cwd(fs: OSFilesystem, path: str, expected: str) -> None:
    fs.chdir("/pub/a")
    assert fs.normalize(path) == expected


@pytest.mark.parametrize("depth", range(1, 12))
@pytest.mark.parametrize("cwd", ["/", "/pub", "/pub/a/b/c"])
def test_dotdot_at_any_depth_is_clamped(fs: OSFilesystem, root: Path, depth: int, cwd: str) -> None:
    fs.chdir(cwd)
    kept = [p for p in cwd.split("/") if p]
    kept = kept[: max(0, len(kept) - depth)]
    expected = "/" + "/".join([*kept, "index.html"])
    for path in ("../" * depth + "index.html", "/".join(["./.."] * depth) + "/./index.html"):
        assert fs.normalize(path) == expected
        # Whatever the depth, the real path never leaves the root.
        real = fs.translate(path)
        assert real == os.path.realpath(root) + expected
        assert os.path.commonpath([real, os.path.realpath(root)]) == os.path.realpath(root)
    assert fs.isfile("../" * depth + "index.html") == (not kept)


def test_dotdot_reads_root_file_not_outside(fs: OSFilesystem) -> None:
    # ../outside/secret exists next to the root; ".." is clamped so it is looked up in the root.
    with pytest.raises(FileNotFoundError):
        fs.open("../outside/secret")
    with pytest.raises(FileNotFoundError):
        fs.open("/pub/a/b/c/../../../../../outside/secret")
    with fs.open("../../../index.html") as f:
        assert f.read() == b"hello"


@pytest.mark.parametrize(
    "encoded",
    ["%2e%2e/%2e%2e/outside/secret", "%2E%2E%2Foutside%2Fsecret", "/pub/%2e%2e/%2e%2e/%2e%2e/x"],
)
def test_percent_decoded_dotdot_is_clamped(fs: OSFilesystem, root: Path, encoded: str) -> None:
    decoded = unquote(encoded)  # the caller (HTTP) decodes once; filesys sees plain ".."
    assert ".." in decoded
    vpath = fs.normalize(decoded)
    assert ".." not in vpath.split("/")
    real = fs.translate(decoded)
    assert real.startswith(os.path.realpath(root) + os.sep)
    assert not fs.exists(decoded)


def test_percent_sequences_are_not_decoded_again(fs: OSFilesystem, root: Path) -> None:
    # A literal "%2e%2e" is an ordinary (odd) file name here, not "..".
    (root / "%2e%2e").mkdir()
    assert fs.normalize("%2e%2e/x") == "/%2e%2e/x"
    assert fs.isdir("%2e%2e")


def test_absolute_path_is_under_root(fs: OSFilesystem, root: Path) -> None:
    assert fs.normalize("/etc/passwd") == "/etc/passwd"
    real = fs.translate("/index.html")
    assert real == os.path.join(os.path.realpath(root), "index.html")
    # /etc in this tree is a link to the real /etc, which must be refused; remove it and the
    # absolute path is looked up under the root, not in the real /etc.
    (root / "etc").unlink()
    assert fs.translate("/etc/passwd") == os.path.join(os.path.realpath(root), "etc", "passwd")
    assert not fs.exists("/etc/passwd")
    with pytest.raises(FileNotFoundError):
        fs.open("/etc/passwd")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_bytes(b"not the real one")
    with fs.open("/etc/passwd") as f:
        assert f.read() == b"not the real one"


# -- malformed paths: NUL and backslash ----------------------------------------------------------


def _all_operations(fs: OSFilesystem) -> dict[str, Callable[[str], object]]:
    return {
        "normalize": fs.normalize,
        "translate": fs.translate,
        "chdir": fs.chdir,
        "stat": fs.stat,
        "lstat": fs.lstat,
        "readlink": fs.readlink,
        "listdir": fs.listdir,
        "open": fs.open,
        "open_wb": lambda p: fs.open(p, "wb"),
        "mkdir": fs.mkdir,
        "rmdir": fs.rmdir,
        "remove": fs.remove,
        "rename_src": lambda p: fs.rename(p, "/renamed"),
        "rename_dst": lambda p: fs.rename("/index.html", p),
        "getsize": fs.getsize,
        "getmtime": fs.getmtime,
    }


OPERATIONS = [
    "normalize",
    "translate",
    "chdir",
    "stat",
    "lstat",
    "readlink",
    "listdir",
    "open",
    "open_wb",
    "mkdir",
    "rmdir",
    "remove",
    "rename_src",
    "rename_dst",
    "getsize",
    "getmtime",
]


def test_operation_list_is_complete(fs: OSFilesystem) -> None:
    assert sorted(_all_operations(fs)) == sorted(OPERATIONS)


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("path", ["index.html\x00.txt", "\x00", "/pub/\x00/../index.html"])
def test_nul_is_refused(fs: OSFilesystem, root: Path, op: str, path: str) -> None:
    with pytest.raises(PathEscapeError) as info:
        _all_operations(fs)[op](path)
    assert info.value.errno == errno.EACCES
    assert (root / "index.html").read_bytes() == b"hello"
    assert not (root / "renamed").exists()


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize(
    "path", ["..\\..\\outside\\secret", "pub\\readme.txt", "\\", "/pub/a\\b", "C:\\Windows"]
)
def test_backslash_is_refused(fs: OSFilesystem, root: Path, op: str, path: str) -> None:
    with pytest.raises(PathEscapeError):
        _all_operations(fs)[op](path)
    assert (root / "index.html").read_bytes() == b"hello"
    assert not (root / "renamed").exists()


@pytest.mark.parametrize("path", ["a\x00b", "a\\b", "/out/secret", "/etc/passwd", "../secret"])
def test_predicates_never_raise(fs: OSFilesystem, path: str) -> None:
    assert fs.exists(path) is False
    assert fs.isdir(path) is False
    assert fs.isfile(path) is False


def test_path_escape_error_is_a_permission_error() -> None:
    exc = PathEscapeError("/x")
    assert isinstance(exc, PermissionError)
    assert isinstance(exc, OSError)
    assert exc.errno == errno.EACCES
    assert exc.filename == "/x"


# -- symbolic links ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "etc",
        "/etc/passwd",
        "etc/passwd",
        "out",
        "out/",
        "out/secret",
        "out/subdir",
        "out/subdir/..",
        "/pub/../out/secret",
        "secret",
        "evil",
        "evil/secret",
    ],
)
def test_symlink_escapes_are_refused_when_followed(fs: OSFilesystem, path: str) -> None:
    with pytest.raises(PathEscapeError):
        fs.translate(path)
    with pytest.raises(PathEscapeError):
        fs.stat(path)
    with pytest.raises(PathEscapeError):
        fs.open(path)
    with pytest.raises(PathEscapeError):
        fs.chdir(path)
    with pytest.raises(PathEscapeError):
        fs.listdir(path)
    with pytest.raises(PathEscapeError):
        fs.getsize(path)
    with pytest.raises(PathEscapeError):
        fs.getmtime(path)
    assert not fs.exists(path)
    assert not fs.isdir(path)
    assert not fs.isfile(path)
    assert fs.cwd() == "/"


def test_sibling_with_root_name_prefix_is_outside(fs: OSFilesystem, root: Path) -> None:
    # <tmp>/root-evil starts with the string "<tmp>/root": a bare startswith() would let it in.
    real = os.path.realpath(root / "evil")
    assert real.startswith(str(os.path.realpath(root)))
    with pytest.raises(PathEscapeError):
        fs.open("evil/secret")


def test_traversing_through_outside_directory_link(fs: OSFilesystem, outside: Path) -> None:
    with pytest.raises(PathEscapeError):
        fs.open("out/new.txt", "wb")
    assert not (outside / "new.txt").exists()
    with pytest.raises(PathEscapeError):
        fs.open("out/secret", "ab")
    assert (outside / "secret").read_bytes() == b"top secret"
    with pytest.raises(PathEscapeError):
        fs.mkdir("out/newdir")
    assert not (outside / "newdir").exists()
    with pytest.raises(PathEscapeError):
        fs.rmdir("out/subdir")
    assert (outside / "subdir").is_dir()
    with pytest.raises(PathEscapeError):
        fs.remove("out/secret")
    assert (outside / "secret").exists()
    with pytest.raises(PathEscapeError):
        fs.rename("out/secret", "/stolen")
    with pytest.raises(PathEscapeError):
        fs.rename("/index.html", "out/planted")
    assert (outside / "secret").exists()
    assert not (outside / "planted").exists()
    with pytest.raises(PathEscapeError):
        fs.lstat("out/secret")
    with pytest.raises(PathEscapeError):
        fs.readlink("out/secret")


def test_writing_through_dangling_link_out_is_refused(
    fs: OSFilesystem, root: Path, tmp_path: Path
) -> None:
    os.symlink(tmp_path / "planted", root / "trap")
    with pytest.raises(PathEscapeError):
        fs.open("trap", "wb")
    assert not (tmp_path / "planted").exists()


def test_link_to_etc_is_refused(fs: OSFilesystem) -> None:
    with pytest.raises(PathEscapeError):
        fs.open("/etc/passwd")
    with pytest.raises(PathEscapeError):
        fs.listdir("/etc")
    with pytest.raises(PathEscapeError):
        fs.readlink("/etc")


def test_links_inside_root_work(fs: OSFilesystem, root: Path) -> None:
    assert fs.isdir("inlink")
    assert fs.listdir("inlink") == ["a", "readme.txt"]
    with fs.open("inlink/readme.txt") as f:
        assert f.read() == b"read me"
    with fs.open("abslink") as f:
        assert f.read() == b"read me"
    assert fs.translate("inlink/a") == os.path.join(os.path.realpath(root), "pub", "a")
    fs.chdir("inlink/a/b")
    assert fs.cwd() == "/inlink/a/b"
    fs.cdup()
    fs.cdup()
    fs.cdup()
    assert fs.cwd() == "/"  # logical ".." through the link, as a shell's "cd -L" does
    assert fs.readlink("inlink") == "/pub"
    assert fs.readlink("abslink") == "/pub/readme.txt"
    assert fs.readlink("dangling") == "/nowhere"


def test_link_chain_inside_root(fs: OSFilesystem, root: Path) -> None:
    os.symlink("inlink/a", root / "chain")
    assert fs.readlink("chain") == "/pub/a"
    assert fs.isdir("chain/b/c")


def test_link_to_root_itself(fs: OSFilesystem, root: Path) -> None:
    os.symlink(".", root / "self")
    assert fs.readlink("self") == "/"
    assert fs.isfile("self/self/index.html")


def test_dangling_link(fs: OSFilesystem) -> None:
    assert not fs.exists("dangling")
    assert stat.S_ISLNK(fs.lstat("dangling").st_mode)
    with pytest.raises(FileNotFoundError):
        fs.stat("dangling")


def test_lstat_sees_links_themselves(fs: OSFilesystem) -> None:
    for name in ("etc", "out", "secret", "inlink"):
        assert stat.S_ISLNK(fs.lstat(name).st_mode), name
    assert stat.S_ISREG(fs.lstat("index.html").st_mode)
    assert stat.S_ISDIR(fs.lstat("/").st_mode)


def test_readlink_of_non_link(fs: OSFilesystem) -> None:
    with pytest.raises(OSError, match="Invalid argument") as info:
        fs.readlink("index.html")
    assert info.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        fs.readlink("missing")


def test_escaping_links_can_be_removed_and_renamed(
    fs: OSFilesystem, root: Path, outside: Path
) -> None:
    # The link is inside the root even though its target is not: acting on it is allowed, and
    # the target is untouched.
    fs.rename("out", "pub/moved-out")
    assert os.readlink(root / "pub" / "moved-out") == "../outside"
    assert not (root / "out").is_symlink()
    fs.remove("pub/moved-out")
    assert not (root / "pub" / "moved-out").is_symlink()
    fs.remove("secret")
    fs.remove("etc")
    assert (outside / "secret").read_bytes() == b"top secret"
    assert outside.is_dir()
    assert os.path.isdir("/etc")


def test_rename_over_escaping_link_replaces_the_link(
    fs: OSFilesystem, root: Path, outside: Path
) -> None:
    fs.rename("index.html", "secret")
    assert not (root / "secret").is_symlink()
    assert (root / "secret").read_bytes() == b"hello"
    assert (outside / "secret").read_bytes() == b"top secret"


def test_open_does_not_follow_a_final_link(fs: OSFilesystem, root: Path) -> None:
    # translate() resolves links, so open() gets a link-free path; the O_NOFOLLOW it adds is
    # checked here by opening a real path that is itself a link.
    from medusa.core import filesys

    with pytest.raises(OSError, match="Too many levels of symbolic links") as info:
        filesys._nofollow_opener(str(root / "abslink"), os.O_RDONLY)
    assert info.value.errno == errno.ELOOP


# -- cwd / chdir / cdup --------------------------------------------------------------------------


def test_chdir_and_cdup(fs: OSFilesystem) -> None:
    assert fs.cwd() == "/"
    fs.chdir("pub")
    assert fs.cwd() == "/pub"
    fs.chdir("a/b/")
    assert fs.cwd() == "/pub/a/b"
    fs.chdir("./c")
    assert fs.cwd() == "/pub/a/b/c"
    assert fs.listdir(".") == ["deep.txt"]
    assert fs.listdir() == ["deep.txt"]
    with fs.open("deep.txt") as f:
        assert f.read() == b"deep"
    fs.cdup()
    assert fs.cwd() == "/pub/a/b"
    fs.chdir("../..")
    assert fs.cwd() == "/pub"
    fs.chdir("/pub/a/b/c")
    fs.chdir("/")
    assert fs.cwd() == "/"


def test_cdup_at_root_stays_at_root(fs: OSFilesystem) -> None:
    fs.cdup()
    assert fs.cwd() == "/"
    fs.chdir("pub")
    fs.cdup()
    fs.cdup()
    fs.cdup()
    assert fs.cwd() == "/"
    fs.chdir("../../..")
    assert fs.cwd() == "/"


def test_chdir_errors_leave_cwd_unchanged(fs: OSFilesystem) -> None:
    fs.chdir("pub")
    with pytest.raises(NotADirectoryError) as not_dir:
        fs.chdir("readme.txt")
    assert not_dir.value.filename == "/pub/readme.txt"
    with pytest.raises(FileNotFoundError) as missing:
        fs.chdir("missing")
    assert missing.value.filename == "/pub/missing"
    with pytest.raises(FileNotFoundError):
        fs.chdir("/dangling")
    with pytest.raises(PathEscapeError):
        fs.chdir("/out")
    assert fs.cwd() == "/pub"


def test_relative_operations_use_cwd(fs: OSFilesystem, root: Path) -> None:
    fs.chdir("/pub/a")
    fs.mkdir("new")
    assert (root / "pub" / "a" / "new").is_dir()
    with fs.open("new/f.bin", "wb") as f:
        f.write(b"x")
    assert (root / "pub" / "a" / "new" / "f.bin").read_bytes() == b"x"
    assert fs.getsize("new/f.bin") == 1
    assert fs.translate("b") == os.path.join(os.path.realpath(root), "pub", "a", "b")


def test_instances_have_separate_cwd(root: Path) -> None:
    one, two = OSFilesystem(root), OSFilesystem(root)
    one.chdir("pub")
    assert two.cwd() == "/"


# -- files and directories -----------------------------------------------------------------------


def test_stat_and_predicates(fs: OSFilesystem, root: Path) -> None:
    os.utime(root / "index.html", (1_000_000_000, 1_234_567_890))
    st = fs.stat("/index.html")
    assert st.st_size == 5
    assert fs.getsize("index.html") == 5
    assert fs.getmtime("index.html") == 1_234_567_890
    assert (fs.exists("index.html"), fs.isfile("index.html"), fs.isdir("index.html")) == (
        True,
        True,
        False,
    )
    assert (fs.exists("pub"), fs.isfile("pub"), fs.isdir("pub")) == (True, False, True)
    assert (fs.exists("/"), fs.isfile("/"), fs.isdir("/")) == (True, False, True)
    assert not fs.exists("missing")
    with pytest.raises(FileNotFoundError):
        fs.stat("missing")


def test_listdir_is_sorted(fs: OSFilesystem, root: Path) -> None:
    for name in ("zeta", "Alpha", "beta", "_x"):
        (root / "pub" / name).write_bytes(b"")
    assert fs.listdir("pub") == sorted(["a", "readme.txt", "zeta", "Alpha", "beta", "_x"])
    assert fs.listdir("/") == sorted(os.listdir(root))
    with pytest.raises(NotADirectoryError):
        fs.listdir("index.html")
    with pytest.raises(FileNotFoundError):
        fs.listdir("missing")


def test_open_modes(fs: OSFilesystem, root: Path) -> None:
    with fs.open("pub/new.bin", "wb") as f:
        f.write(b"abc")
    with fs.open("pub/new.bin", "ab") as f:
        f.write(b"def")
    with fs.open("pub/new.bin", "r+b") as f:
        f.seek(1)
        f.write(b"X")
    assert (root / "pub" / "new.bin").read_bytes() == b"aXcdef"
    with fs.open("pub/new.bin") as f:
        assert f.read() == b"aXcdef"
    with pytest.raises(FileExistsError):
        fs.open("pub/new.bin", "xb")
    with fs.open("pub/x.bin", "xb") as f:
        f.write(b"1")
    with pytest.raises(ValueError, match="binary"):
        fs.open("pub/new.bin", "r")
    with pytest.raises(ValueError, match="binary"):
        fs.open("pub/new.bin", "rtb")
    with pytest.raises(IsADirectoryError):
        fs.open("pub")
    with pytest.raises(FileNotFoundError):
        fs.open("missing")
    with pytest.raises(FileNotFoundError):
        fs.open("nodir/new.bin", "wb")


def test_write_through_inside_link(fs: OSFilesystem, root: Path) -> None:
    with fs.open("inlink/via-link.bin", "wb") as f:
        f.write(b"ok")
    assert (root / "pub" / "via-link.bin").read_bytes() == b"ok"


def test_mkdir_rmdir(fs: OSFilesystem, root: Path) -> None:
    fs.mkdir("/pub/new")
    assert (root / "pub" / "new").is_dir()
    with pytest.raises(FileExistsError):
        fs.mkdir("pub/new")
    with pytest.raises(FileExistsError):
        fs.mkdir("inlink")
    with pytest.raises(FileNotFoundError):
        fs.mkdir("no/such/parent")
    (root / "pub" / "new" / "f").write_bytes(b"")
    with pytest.raises(OSError, match="not empty") as info:
        fs.rmdir("pub/new")
    assert info.value.errno in (errno.ENOTEMPTY, errno.EEXIST)
    (root / "pub" / "new" / "f").unlink()
    fs.rmdir("pub/new")
    assert not (root / "pub" / "new").exists()
    with pytest.raises(FileNotFoundError):
        fs.rmdir("pub/new")
    with pytest.raises(NotADirectoryError):
        fs.rmdir("index.html")
    with pytest.raises(NotADirectoryError):
        fs.rmdir("inlink")  # a link to a directory is not a directory to rmdir
    assert (root / "pub").is_dir()


def test_remove(fs: OSFilesystem, root: Path) -> None:
    fs.remove("pub/readme.txt")
    assert not (root / "pub" / "readme.txt").exists()
    with pytest.raises(FileNotFoundError):
        fs.remove("pub/readme.txt")
    with pytest.raises(IsADirectoryError):
        fs.remove("pub/a")
    fs.remove("inlink")  # the link, not the directory
    assert not (root / "inlink").is_symlink()
    assert (root / "pub").is_dir()


def test_rename(fs: OSFilesystem, root: Path) -> None:
    fs.rename("index.html", "pub/a/moved.html")
    assert not (root / "index.html").exists()
    assert (root / "pub" / "a" / "moved.html").read_bytes() == b"hello"
    fs.chdir("pub")
    fs.rename("a", "renamed-a")
    assert (root / "pub" / "renamed-a" / "b" / "c" / "deep.txt").read_bytes() == b"deep"
    (root / "pub" / "other").write_bytes(b"other")
    fs.rename("other", "readme.txt")  # replaces the file
    assert (root / "pub" / "readme.txt").read_bytes() == b"other"
    with pytest.raises(FileNotFoundError) as info:
        fs.rename("missing", "x")
    assert info.value.filename == "/pub/missing"
    assert info.value.filename2 == "/pub/x"


@pytest.mark.parametrize("path", ["/", "", ".", "..", "/pub/.."])
def test_root_cannot_be_removed_or_renamed(fs: OSFilesystem, root: Path, path: str) -> None:
    with pytest.raises(PermissionError):
        fs.rmdir(path)
    with pytest.raises(PermissionError):
        fs.remove(path)
    with pytest.raises(PermissionError):
        fs.rename(path, "/x")
    with pytest.raises(PermissionError):
        fs.rename("/index.html", path)
    assert root.is_dir()
    assert (root / "index.html").exists()


def test_empty_root_cannot_be_removed(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    fs = OSFilesystem(empty)
    with pytest.raises(PermissionError):
        fs.rmdir("/")
    assert empty.is_dir()


def test_errors_show_virtual_paths_only(fs: OSFilesystem, root: Path) -> None:
    real_root = os.path.realpath(root)
    calls: list[Callable[[], object]] = [
        lambda: fs.stat("/pub/missing"),
        lambda: fs.lstat("/pub/missing"),
        lambda: fs.open("/pub/missing"),
        lambda: fs.listdir("/pub/missing"),
        lambda: fs.remove("/pub/missing"),
        lambda: fs.rmdir("/pub/missing"),
        lambda: fs.readlink("/pub/missing"),
        lambda: fs.rename("/pub/missing", "/pub/x"),
        lambda: fs.chdir("/pub/missing"),
        lambda: fs.mkdir("/pub/missing/x"),
    ]
    for call in calls:
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert info.value.filename in ("/pub/missing", "/pub/missing/x")
        assert real_root not in str(info.value)
    with pytest.raises(PathEscapeError) as escape:
        fs.open("/out/secret")
    assert real_root not in str(escape.value)
    assert escape.value.filename == "/out/secret"


def test_root_at_filesystem_root(tmp_path: Path) -> None:
    fs = OSFilesystem("/")
    assert fs.translate("/") == "/"
    assert fs.translate("/../..") == "/"
    assert fs.normalize("x") == "/x"
    real_tmp = os.path.realpath(tmp_path)
    assert fs.isdir(real_tmp)
    assert fs.translate(real_tmp + "/../x") == os.path.join(os.path.dirname(real_tmp), "x")
    assert fs.lstat("/").st_ino == os.lstat("/").st_ino
    assert fs.lstat(real_tmp).st_ino == os.lstat(real_tmp).st_ino
    fs.chdir(real_tmp)
    assert fs.cwd() == real_tmp
