"""Robust transfer: resumable HTTP downloads, checksums, safe extraction, multi-part archives.

Every failure a dataset download meets in practice (dead link, 403, missing credentials,
checksum mismatch, truncated file, hostile archive member) is raised as a
:class:`TransferError` whose ``reason`` is one short, clear line; the acquisition pipeline
records that reason in the manifest and goes on. Credentials come only from environment
variables and never appear in logs or reasons (:func:`redact_url`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import re
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

CHUNK_SIZE = 1 << 20
#: network read size: a cut connection loses at most this much of what it had received
DOWNLOAD_CHUNK_SIZE = 1 << 16
#: query parameters whose values are secrets (the KAIST VoxCeleb mirror passes its key so)
SECRET_QUERY_KEYS = frozenset({"key", "token", "access_token", "password", "sig", "signature"})
USER_AGENT = "talking-heads-dataset-downloader (+https://arxiv.org/abs/2308.16041)"


class TransferError(Exception):
    """A download, verification or extraction failure with a one-line ``reason``."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class MissingCredentialsError(TransferError):
    """Credentials a licensed source needs are not set in the environment."""


class ChecksumError(TransferError):
    """A file's digest differs from the published one."""


def redact_url(url: str) -> str:
    """``url`` with user info and secret query values replaced by ``***`` (safe to log)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [(k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in parse_qsl(parts.query)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def credentials_from_env(
    variables: Sequence[str], *, purpose: str, environ: dict[str, str] | None = None
) -> tuple[str, ...]:
    """Values of the environment ``variables``; a clear error naming the unset ones.

    The error names variables, never values.
    """
    environ = os.environ if environ is None else environ
    missing = [v for v in variables if not environ.get(v)]
    if missing:
        raise MissingCredentialsError(
            f"missing credentials: set {' and '.join(missing)} ({purpose})"
        )
    return tuple(environ[v] for v in variables)


def make_session(auth: tuple[str, str] | None = None) -> requests.Session:
    """An HTTP session with our user agent and optional basic auth."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    if auth is not None:
        session.auth = auth
    return session


def hash_file(path: Path | str, algorithm: str = "sha256") -> str:
    """Hex digest of a file (streamed)."""
    return hash_stream(open(path, "rb"), algorithm)


def hash_stream(handle: BinaryIO, algorithm: str = "sha256") -> str:
    """Hex digest of everything ``handle`` yields; closes it."""
    digest = hashlib.new(algorithm)
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, *, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise :class:`ChecksumError` when ``path``'s md5 / sha256 differs from the given one."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected:
            actual = hash_file(path, algorithm)
            if actual.lower() != expected.lower():
                raise ChecksumError(
                    f"checksum mismatch: {algorithm} of {path.name} is {actual}, "
                    f"expected {expected.lower()}"
                )


def _http_reason(status: int, url: str) -> str:
    meaning = {
        401: "unauthorised (wrong or missing credentials)",
        403: "forbidden",
        404: "not found (dead link)",
        410: "gone (dead link)",
        416: "range not satisfiable",
        429: "too many requests",
    }.get(status, "server error" if status >= 500 else "unexpected status")
    return f"HTTP {status} {meaning}: {redact_url(url)}"


@dataclass
class DownloadResult:
    """What :func:`download_file` did: the final path, bytes fetched now and where it resumed."""

    path: Path
    bytes_fetched: int
    resumed_from: int
    already_complete: bool = False


def part_path(dest: Path) -> Path:
    """The ``.part`` file a download of ``dest`` grows in until it is complete."""
    return dest.with_name(dest.name + ".part")


def download_file(
    url: str,
    dest: Path | str,
    *,
    session: requests.Session | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    expected_size: int | None = None,
    retries: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    progress: bool = True,
    chunk_size: int = DOWNLOAD_CHUNK_SIZE,
) -> DownloadResult:
    """Download ``url`` to ``dest`` resumably and verify it; atomic rename on success.

    Bytes grow in ``dest.part``; a retry or a later run asks the server for the rest with a
    ``Range`` request, so completed bytes are never fetched twice (a server that ignores
    ``Range`` and answers 200 makes the download start over). Connection errors, timeouts,
    HTTP 429 and 5xx are retried ``retries`` times with exponential back-off and jitter;
    401/403/404/410 fail at once. The finished file's size and md5/sha256 are checked before
    the rename; a mismatch removes the ``.part`` (its bytes are wrong, resuming would keep
    them) and raises :class:`ChecksumError`. An existing ``dest`` is verified and kept.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if expected_size is not None and dest.stat().st_size != expected_size:
            raise ChecksumError(
                f"size mismatch: {dest.name} has {dest.stat().st_size} bytes, "
                f"expected {expected_size}"
            )
        verify_checksum(dest, md5=md5, sha256=sha256)
        return DownloadResult(dest, 0, dest.stat().st_size, already_complete=True)
    session = session or make_session()
    part = part_path(dest)
    fetched_total = 0
    resumed_from = part.stat().st_size if part.exists() else 0
    attempt = 0
    while True:
        try:
            fetched_total += _fetch_into(
                session, url, part, expected_size, timeout_s, progress, chunk_size
            )
            break
        except TransferError as error:
            if not error.retryable or attempt >= retries:
                raise
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as error:
            if attempt >= retries:
                raise TransferError(
                    f"connection failed after {retries + 1} attempts "
                    f"({type(error).__name__}): {redact_url(url)}"
                ) from None
        attempt += 1
        delay = backoff_s * 2 ** (attempt - 1) * (1 + 0.25 * random.random())
        log.info("retrying %s in %.1f s (attempt %d)", redact_url(url), delay, attempt + 1)
        time.sleep(delay)
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink()
        raise ChecksumError(
            f"size mismatch: {dest.name} has {size} bytes, expected {expected_size}"
        )
    try:
        verify_checksum(part, md5=md5, sha256=sha256)
    except ChecksumError as error:
        part.unlink()
        raise ChecksumError(error.reason.replace(part.name, dest.name)) from None
    os.replace(part, dest)
    # bytes that came over the network this call (a restart after a 200 counts from zero)
    return DownloadResult(dest, max(fetched_total, size - resumed_from), resumed_from)


def _fetch_into(
    session: requests.Session,
    url: str,
    part: Path,
    expected_size: int | None,
    timeout_s: float,
    progress: bool,
    chunk_size: int,
) -> int:
    """One attempt: append the missing bytes of ``url`` to ``part``; bytes received."""
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset == expected_size and offset > 0:
        return 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout_s) as response:
        status = response.status_code
        if status == 416 and offset:
            # the .part already holds everything the server has
            return 0
        if status in (429,) or status >= 500:
            raise TransferError(_http_reason(status, url), retryable=True)
        if status >= 400:
            raise TransferError(_http_reason(status, url))
        if status == 200 and offset:
            log.info("%s ignores Range; starting over", redact_url(url))
            offset = 0
        mode = "ab" if status == 206 else "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else expected_size
        received = 0
        with (
            open(part, mode) as handle,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=part.name.removesuffix(".part")[:40],
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            for chunk in response.iter_content(chunk_size):
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            handle.flush()
            os.fsync(handle.fileno())
        if length is not None and received < int(length):
            # the server closed the connection early: keep the bytes, resume next attempt
            raise TransferError(
                f"connection cut after {offset + received} of {total} bytes: {redact_url(url)}",
                retryable=True,
            )
        return received


def fetch_text(
    url: str,
    *,
    session: requests.Session | None = None,
    retries: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
) -> str:
    """GET a small text file (annotation lists, checksums); UTF-8 with any BOM removed."""
    session = session or make_session()
    for attempt in range(retries + 1):
        try:
            response = session.get(url, timeout=timeout_s)
        except (requests.ConnectionError, requests.Timeout) as error:
            if attempt >= retries:
                raise TransferError(
                    f"connection failed ({type(error).__name__}): {redact_url(url)}"
                ) from None
        else:
            if response.status_code < 400:
                return response.content.decode("utf-8-sig")
            if response.status_code != 429 and response.status_code < 500:
                raise TransferError(_http_reason(response.status_code, url))
            if attempt >= retries:
                raise TransferError(_http_reason(response.status_code, url))
        time.sleep(backoff_s * 2**attempt)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# multi-part archives


class ConcatReader(io.RawIOBase):
    """A read-only, seekable view of several files as one (``cat parta* > whole`` unwritten).

    VoxCeleb's and LRW's archives are published as byte-split parts; ``zipfile``/``tarfile``
    read them through this view, so joining needs no second copy of hundreds of gigabytes.
    """

    def __init__(self, parts: Sequence[Path | str]) -> None:
        super().__init__()
        if not parts:
            raise ValueError("ConcatReader needs at least one part")
        self._paths = [Path(p) for p in parts]
        self._sizes = [p.stat().st_size for p in self._paths]
        self._starts = [sum(self._sizes[:i]) for i in range(len(self._sizes))]
        self._size = sum(self._sizes)
        self._pos = 0
        self._handles: dict[int, BinaryIO] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        written = 0
        while written < len(view) and self._pos < self._size:
            index = max(i for i, start in enumerate(self._starts) if start <= self._pos)
            handle = self._handles.get(index)
            if handle is None:
                handle = self._handles[index] = open(self._paths[index], "rb")  # noqa: SIM115
            local = self._pos - self._starts[index]
            handle.seek(local)
            want = min(len(view) - written, self._sizes[index] - local)
            n = handle.readinto(view[written : written + want])
            if not n:
                break
            written += n
            self._pos += n
        return written

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        super().close()


# ---------------------------------------------------------------------------------------------
# safe extraction


def _member_problem(name: str, target: Path) -> str | None:
    """Why an archive member name may not be extracted under ``target`` (None when safe)."""
    if not name or "\x00" in name:
        return "empty or NUL name"
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in posix.parts:
        return "path traversal ('..')"
    resolved = (target / posix).resolve()
    if not resolved.is_relative_to(target.resolve()):
        return "escapes the target"
    return None


@dataclass
class ExtractReport:
    """Members written, members already present (resume) and members refused with why."""

    extracted: list[Path]
    existing: list[Path]
    rejected: list[tuple[str, str]]


def safe_extract(
    archive: Path | str | BinaryIO,
    target: Path | str,
    *,
    select: Callable[[str], bool] | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> ExtractReport:
    """Extract a zip or tar archive (path or seekable file object) safely under ``target``.

    Refused members, with their reason in the report: absolute paths, ``..`` components,
    names that resolve outside ``target``, and symbolic/hard links and device files (no
    dataset needs them, and a link is how an archive escapes its target). ``select`` keeps
    a subset of member names (a shard). Each file is written to a temporary name and renamed,
    and files already present with the member's size are skipped, so an interrupted
    extraction resumes where it stopped.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    report = ExtractReport([], [], [])
    handle = open(archive, "rb") if isinstance(archive, (str, Path)) else archive  # noqa: SIM115
    try:
        if zipfile.is_zipfile(handle):
            handle.seek(0)
            _extract_zip(zipfile.ZipFile(handle), target, select, report, progress, desc)
        else:
            handle.seek(0)
            try:
                tar = tarfile.open(fileobj=handle, mode="r:*")  # noqa: SIM115
            except tarfile.TarError:
                raise TransferError(
                    "corrupt or truncated archive (neither a readable zip nor a tar)"
                ) from None
            _extract_tar(tar, target, select, report, progress, desc)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise TransferError(f"corrupt or truncated archive ({error})") from None
    finally:
        if isinstance(archive, (str, Path)):
            handle.close()
    for name, why in report.rejected:
        log.warning("refused archive member %r: %s", name, why)
    return report


def _place_member(
    report: ExtractReport,
    target: Path,
    name: str,
    *,
    problem: str | None,
    is_dir: bool,
    size: int,
    open_source: Callable[[], BinaryIO | None],
) -> None:
    """Extract one checked member: rejected with its problem, kept if already whole, or written."""
    if problem:
        report.rejected.append((name, problem))
        return
    dest = target / name
    if is_dir:
        dest.mkdir(parents=True, exist_ok=True)
        return
    if dest.exists() and dest.stat().st_size == size:
        report.existing.append(dest)
        return
    source = open_source()
    if source is None:
        report.rejected.append((name, "unreadable member"))
        return
    _write_member(source, dest)
    report.extracted.append(dest)


def _write_member(source: BinaryIO, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.extracting")
    with source, open(tmp, "wb") as out:
        while chunk := source.read(CHUNK_SIZE):
            out.write(chunk)
    os.replace(tmp, dest)


def _extract_zip(
    archive: zipfile.ZipFile,
    target: Path,
    select: Callable[[str], bool] | None,
    report: ExtractReport,
    progress: bool,
    desc: str | None,
) -> None:
    members = [m for m in archive.infolist() if select is None or select(m.filename)]
    for member in tqdm(members, desc=desc or "extract", unit="file", disable=not progress):
        problem = _member_problem(member.filename, target)
        mode = member.external_attr >> 16
        if problem is None and (mode & 0o170000) == 0o120000:
            problem = "symbolic link"
        _place_member(
            report,
            target,
            member.filename,
            problem=problem,
            is_dir=member.is_dir(),
            size=member.file_size,
            open_source=lambda member=member: archive.open(member),
        )


def _extract_tar(
    archive: tarfile.TarFile,
    target: Path,
    select: Callable[[str], bool] | None,
    report: ExtractReport,
    progress: bool,
    desc: str | None,
) -> None:
    with archive, tqdm(desc=desc or "extract", unit="file", disable=not progress) as bar:
        for member in archive:
            if select is not None and not select(member.name):
                continue
            problem = _member_problem(member.name, target)
            if problem is None and (member.issym() or member.islnk()):
                problem = "symbolic link" if member.issym() else "hard link"
            elif problem is None and not (member.isfile() or member.isdir()):
                problem = "device, fifo or other special file"
            _place_member(
                report,
                target,
                member.name,
                problem=problem,
                is_dir=member.isdir(),
                size=member.size,
                open_source=lambda member=member: archive.extractfile(member),
            )
            bar.update(1)


# ---------------------------------------------------------------------------------------------
# bounded parallelism


def map_bounded(
    function: Callable[[T], R],
    items: Iterable[T],
    *,
    jobs: int = 4,
    desc: str = "",
    unit: str = "item",
    progress: bool = True,
) -> Iterator[tuple[T, R | BaseException]]:
    """Apply ``function`` to ``items`` on at most ``jobs`` threads; yield ``(item, result)``.

    An exception is yielded in place of the result (the caller records it as the item's
    reason), so one bad item never stops the others. Results come as they complete.
    """
    items = list(items)
    with (
        ThreadPoolExecutor(max_workers=max(1, jobs)) as pool,
        tqdm(total=len(items), desc=desc, unit=unit, disable=not progress) as bar,
    ):
        futures = {pool.submit(function, item): item for item in items}
        for future in as_completed(futures):
            bar.update(1)
            error = future.exception()
            yield futures[future], (error if error is not None else future.result())
