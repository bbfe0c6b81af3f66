"""The one git command runner: every git process releaserisk starts is started here.

Why one place: paths in git's output are easy to parse wrongly, and a wrong path is a
silent loss (a fix to ``café.py`` once blamed nothing, because ``git diff`` printed it
as ``"a/caf\\303\\251.py"`` and the blame of that name failed). The rules, applied to
every command:

* ``-c core.quotepath=off`` — bytes above 0x7f are printed as they are, not as octal
  escapes (git-config(1), ``core.quotePath``);
* ``LC_ALL=C``, no pager, no credential prompt — stable, non-interactive output;
* output is bytes: callers that read paths split NUL-separated output (``-z``) and
  decode names with :func:`decode_path` (UTF-8 with ``surrogateescape``, PEP 383), which
  keeps a Latin-1 or otherwise non-UTF-8 name byte-exact when it is passed back to git;
* where git can only quote (the ``---``/``+++`` lines of a patch), :func:`unquote_c_path`
  undoes git's C-style quoting (``quote_c_style`` in git's ``quote.c``) and the tab git
  appends after a name with a space (``diff.c``: "``name_a_tab``").

Paths stored in DuckDB must be valid UTF-8: :func:`storable_path` shows the bytes that
are not UTF-8 as ``\\xNN`` escapes, so two different non-UTF-8 names never collapse into
one stored name (``errors="replace"`` would map both to ``U+FFFD``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence

from releaserisk.errors import GitError

__all__ = [
    "decode_path",
    "git_env",
    "git_text",
    "nul_tokens",
    "popen_git",
    "require_git",
    "run_git",
    "storable_path",
    "unquote_c_path",
]

#: Options put before every git subcommand. Besides unquoted paths, they pin every setting
#: of a user's or the system's git config that changes what the commands releaserisk runs
#: print — and so the rows it stores: a colour, signature or encoding setting garbles the
#: parsed output; the diff algorithm changes line counts; the rename limit and mode change
#: which files count as renamed; ``log.showRoot=false`` hides the first commit's files.
#: Values are git's defaults. (A ``blame.ignoreRevsFile`` is honoured: git offers no
#: option that clears it before it is read, and a project's list of formatting commits is
#: what SZZ should skip anyway.)
GIT_OPTIONS: tuple[str, ...] = (
    "-c", "core.quotepath=off",
    "-c", "color.ui=false", "-c", "color.diff=false",
    "-c", "log.showSignature=false", "-c", "log.showRoot=true",
    "-c", "i18n.logOutputEncoding=UTF-8",
    "-c", "diff.algorithm=myers", "-c", "diff.renames=true", "-c", "diff.renameLimit=1000",
)  # fmt: skip

GitArg = str | bytes | os.PathLike


def git_env() -> dict[str, str]:
    """Environment for git: stable, locale-independent output; never prompt, never page.

    Returns
    -------
    dict
        ``os.environ`` with ``LC_ALL=C``, ``GIT_TERMINAL_PROMPT=0`` and ``GIT_PAGER=cat``.
    """
    return {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat"}


def require_git() -> None:
    """Check that a git executable is on ``PATH``.

    Raises
    ------
    GitError
        git is not installed.
    """
    if shutil.which("git") is None:
        raise GitError("git executable not found on PATH; install git")


def _command(path: GitArg, args: Sequence[GitArg]) -> list[GitArg]:
    return ["git", "-C", os.fspath(path), *GIT_OPTIONS, *args]


def run_git(path: GitArg, *args: GitArg) -> bytes:
    """Run ``git -C path <args>`` and return its raw standard output.

    Parameters
    ----------
    path : path-like
        The repository (work tree or git directory).
    *args : str or bytes
        The subcommand and its arguments; a path may be given as bytes (or as a
        ``surrogateescape`` string from :func:`decode_path`) to reach git byte-exact.

    Returns
    -------
    bytes
        Standard output.

    Raises
    ------
    GitError
        git is missing or exits non-zero; the message names the subcommand and git's
        last line of error output.
    """
    require_git()
    proc = subprocess.run(_command(path, args), capture_output=True, env=git_env(), check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        raise GitError(f"git {name} failed in {os.fspath(path)}: {lines[-1] if lines else 'unknown error'}")
    return proc.stdout


def git_text(path: GitArg, *args: GitArg) -> str:
    """:func:`run_git` for output without paths (shas, counts, config values), as text.

    Parameters
    ----------
    path : path-like
        The repository.
    *args : str or bytes
        Subcommand and arguments.

    Returns
    -------
    str
        Standard output decoded as UTF-8 (undecodable bytes replaced).

    Raises
    ------
    GitError
        As :func:`run_git`.
    """
    return run_git(path, *args).decode("utf-8", "replace")


def popen_git(path: GitArg, *args: GitArg, stdin: int | None = None) -> subprocess.Popen:
    """Start a long-running git process with piped output (``git log``, ``cat-file --batch``).

    Parameters
    ----------
    path : path-like
        The repository.
    *args : str or bytes
        Subcommand and arguments.
    stdin : int, optional
        ``subprocess.PIPE`` for processes that read requests.

    Returns
    -------
    subprocess.Popen
        With ``stdout`` and ``stderr`` piped (bytes).
    """
    return subprocess.Popen(
        _command(path, args), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=git_env()
    )


def nul_tokens(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """NUL-separated tokens of a stream of byte chunks (the output of a ``-z`` command).

    Parameters
    ----------
    chunks : iterable of bytes
        Output as it arrives, cut anywhere.

    Returns
    -------
    iterator of bytes
        The tokens, without their NUL terminators; a trailing token without one is kept.
    """
    rest = b""
    for chunk in chunks:
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def decode_path(raw: bytes) -> str:
    """A path from git's output as a ``str`` that encodes back to the same bytes.

    Parameters
    ----------
    raw : bytes
        The path as git printed it (unquoted: from ``-z`` output or :func:`unquote_c_path`).

    Returns
    -------
    str
        UTF-8 decoded with ``surrogateescape``: ``os.fsencode`` (which ``subprocess`` applies
        to arguments) gives ``raw`` back, so git finds the file again.
    """
    return raw.decode("utf-8", "surrogateescape")


def storable_path(path: str | bytes) -> str:
    """A path as valid UTF-8 text for the store, distinct for distinct names.

    Parameters
    ----------
    path : str or bytes
        Raw bytes, or a :func:`decode_path` string.

    Returns
    -------
    str
        The name itself when it is UTF-8; otherwise each byte that is not is written
        ``\\xNN`` (Python's ``backslashreplace``).
    """
    raw = path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "backslashreplace")


_C_ESCAPES = {
    ord("a"): 7,
    ord("b"): 8,
    ord("t"): 9,
    ord("n"): 10,
    ord("v"): 11,
    ord("f"): 12,
    ord("r"): 13,
    ord('"'): 34,
    ord("\\"): 92,
}


def unquote_c_path(field: bytes) -> bytes:
    """A path as git printed it in a patch header, back to its bytes.

    git prints a name that needs quoting as a C string (``"a/tab\\there"``, octal ``\\ooo``
    for other bytes) and, when a name contains a space, ends the header with a tab
    (git's ``diff.c``, so that ``patch`` finds the end of the name).

    Parameters
    ----------
    field : bytes
        What follows ``--- `` or ``+++ `` on a header line.

    Returns
    -------
    bytes
        The path with its ``a/``/``b/`` prefix, as it is in the repository.

    Raises
    ------
    GitError
        A quoted name without its closing quote or with an unknown escape.
    """
    if not field.startswith(b'"'):
        return field.removesuffix(b"\t")
    out = bytearray()
    i = 1
    while i < len(field):
        byte = field[i]
        if byte == ord('"'):
            return bytes(out)
        if byte != ord("\\"):
            out.append(byte)
            i += 1
            continue
        code = field[i + 1] if i + 1 < len(field) else None
        if code in _C_ESCAPES:
            out.append(_C_ESCAPES[code])
            i += 2
        elif code is not None and 0x30 <= code <= 0x37 and len(field) >= i + 4:
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            raise GitError(f"unexpected escape in git's quoted path {field[:80]!r}")
    raise GitError(f"unterminated quoted path in git output {field[:80]!r}")
