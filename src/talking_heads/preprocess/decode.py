"""Checked video decoding: decord for fast random access, ffmpeg where decord cannot be trusted.

:func:`open_video` opens a clip as a :class:`VideoSource` whose frames are read by index.
Before any frame is used the file is checked against its container:

1. An empty, missing or unreadable file, or one without a video stream, raises
   :class:`UndecodableVideoError` whose message is the manifest reason (``empty file (0
   bytes)``, ``no video stream``, ``cannot decode: <ffmpeg's error>``).
2. The container's packets are listed without decoding (``ffmpeg -c copy -f framecrc``): their
   count and presentation times are what decord must agree with. A disagreement in frame count
   or timestamps (decord mis-indexes some variable-frame-rate and damaged files), an open error
   or a failure to decode the last frame sends the clip to the ffmpeg path.
3. Variable frame rate is detected from the packet times (frame intervals spreading more than
   10 % around their median). Such clips are resampled to a constant rate: ``target_fps`` when
   given, else the container's average rate rounded to an integer.

Resampling to ``target_fps`` (or resampling a VFR clip) follows ffmpeg's ``fps`` filter
(``-vf fps=F``, ``round=near``): output frame ``k`` shows the last input frame whose start time,
in units of ``1/F`` rounded to the nearest integer, is ``<= k``, and the clip has
``round(end * F)`` frames, ``end`` being the last frame's end time. On the decord path this is
an index map over decord's frames (no re-encode). ``ffmpeg -r F`` as an output option differs
from it on the first frames of clips whose timestamps start late (its vsync pass keeps them);
the filter's rule is the documented one and is what we reproduce.

The ffmpeg path transcodes the video stream once, through the ``fps`` filter, to a lossless
H.264 file (``-qp 0``, 4:2:0) in a temporary directory that decord then reads; a stream that
ends early (a truncated file) gives the frames ffmpeg could decode and a ``truncated`` note
when they cover less than 90 % of the container's declared duration. Everything the checks
found is in ``VideoSource.notes`` for the manifest.
"""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from talking_heads.utils.media import ffmpeg_exe

#: Relative spread of frame intervals around their median above which a clip counts as VFR.
VFR_TOLERANCE = 0.1
#: Share of the declared duration a decoded stream must cover not to be reported truncated.
TRUNCATION_COVERAGE = 0.9


class UndecodableVideoError(Exception):
    """A video no decoder can use; the message is the manifest reason."""


@dataclass(frozen=True)
class ContainerInfo:
    """What the container declares about its first video stream, read without decoding.

    ``pts`` are the packets' presentation timestamps in units of ``timebase`` seconds, sorted
    and shifted to start at 0 (one packet is one frame for the codecs in our datasets);
    ``frame_pts`` is the median packet duration in the same units; ``duration_s`` is the
    container's ``Duration`` line and ``fps`` the rate it declares.
    """

    pts: np.ndarray
    timebase: Fraction
    frame_pts: int
    duration_s: float | None
    fps: float | None
    errors: tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        """Packets in the video stream."""
        return len(self.pts)

    @property
    def packet_times(self) -> np.ndarray:
        """Packet start times in seconds from the first."""
        return self.pts * float(self.timebase)

    @property
    def frame_duration(self) -> float:
        """Median frame duration in seconds."""
        return self.frame_pts * float(self.timebase)

    @property
    def end_pts(self) -> int:
        """End of the last frame (its start plus one frame duration), in timebase units."""
        return int(self.pts[-1]) + self.frame_pts if len(self.pts) else 0

    @property
    def end_s(self) -> float:
        """End of the last frame in seconds."""
        return self.end_pts * float(self.timebase)

    def interval_spread(self) -> tuple[float, float, float]:
        """5th percentile, median and 95th percentile frame interval in seconds."""
        if len(self.pts) < 2:
            return 0.0, 0.0, 0.0
        low, median, high = np.percentile(np.diff(self.packet_times), [5, 50, 95])
        return float(low), float(median), float(high)

    def is_variable_rate(self) -> bool:
        """Whether frame intervals spread more than :data:`VFR_TOLERANCE` around the median.

        Percentiles, not extremes, so that a few missing packets at the end of a truncated
        file or a single dropped frame do not count as a variable rate.
        """
        low, median, high = self.interval_spread()
        if median <= 0:
            return False
        return (high - low) / median > VFR_TOLERANCE

    def typical_fps(self) -> float:
        """The rate of the median frame interval, rounded to an integer (for VFR clips)."""
        _, median, _ = self.interval_spread()
        return float(round(1.0 / median)) if median > 0 else float(round(self.fps or 25.0))


_TIMEBASE = re.compile(r"^#tb 0: (\d+)/(\d+)", re.MULTILINE)
_PACKET = re.compile(r"^0,\s*(-?\d+),\s*(-?\d+),\s*(\d+),", re.MULTILINE)
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_FPS = re.compile(r"Stream #[^\n]*Video:[^\n]*?([\d.]+) fps")


def _error_lines(stderr: str) -> list[str]:
    """ffmpeg's error lines without the ``[component @ 0x...]`` prefixes."""
    lines = []
    for line in stderr.splitlines():
        text = re.sub(r"^(\[[^\]]+\]\s*)+", "", line).strip()
        if not text or text.startswith(("Input #", "Output #", "Stream", "Metadata", "Duration")):
            continue
        if re.search(r"error|invalid|not found|failed|corrupt|partial|truncat", text, re.I):
            lines.append(text)
    return lines


def probe_container(path: Path | str) -> ContainerInfo:
    """List the first video stream's packets (no decoding); raise for an unusable file."""
    path = Path(path)
    if not path.exists():
        raise UndecodableVideoError(f"missing file: {path.name}")
    if path.stat().st_size == 0:
        raise UndecodableVideoError("empty file (0 bytes)")
    result = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-hide_banner",
            "-i",
            str(path),
            "-map",
            "0:v:0?",
            "-c",
            "copy",
            "-f",
            "framecrc",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    stderr = result.stderr
    if "Stream #" not in stderr:
        errors = _error_lines(stderr)
        raise UndecodableVideoError(f"cannot decode: {errors[0] if errors else 'unreadable'}")
    if not re.search(r"Stream #[^\n]*: Video:", stderr):
        raise UndecodableVideoError("no video stream")
    timebase = _TIMEBASE.search(result.stdout)
    packets = np.array(
        [(int(pts), int(length)) for _, pts, length in _PACKET.findall(result.stdout)],
        dtype=np.int64,
    ).reshape(-1, 2)
    if timebase is None or not len(packets):
        errors = _error_lines(stderr)
        raise UndecodableVideoError(
            f"cannot decode: {errors[0] if errors else 'no video packets in the stream'}"
        )
    pts = np.sort(packets[:, 0])
    durations = packets[:, 1][packets[:, 1] > 0]
    duration = re.search(_DURATION, stderr)
    fps = re.search(_FPS, stderr)
    return ContainerInfo(
        pts=pts - pts[0],
        timebase=Fraction(int(timebase.group(1)), int(timebase.group(2))),
        frame_pts=int(np.median(durations)) if len(durations) else 0,
        duration_s=(
            int(duration.group(1)) * 3600 + int(duration.group(2)) * 60 + float(duration.group(3))
            if duration
            else None
        ),
        fps=float(fps.group(1)) if fps else None,
        errors=tuple(_error_lines(stderr)),
    )


def fps_filter_indices(
    pts: np.ndarray, end_pts: int, timebase: Fraction, fps: float | Fraction
) -> np.ndarray:
    """Input frame shown by each output frame of ffmpeg's ``fps=F`` filter (``round=near``).

    ``pts`` are the input frames' integer start timestamps (sorted, in ``timebase`` units,
    the first taken as time 0) and ``end_pts`` the end of the last frame. Each start is
    rescaled to units of ``1/F`` rounding halves away from zero, exactly in integers as
    ffmpeg's ``av_rescale_q_rnd`` does; output frame ``k`` shows the last input frame whose
    rescaled start is ``<= k``, and the output has as many frames as the rescaled end.
    """
    rate = Fraction(fps).limit_denominator(1001)
    scale_num = rate.numerator * timebase.numerator
    scale_den = rate.denominator * timebase.denominator
    starts = np.asarray(pts, dtype=np.int64)
    starts = starts - starts[0]
    slots = (2 * starts * scale_num + scale_den) // (2 * scale_den)
    count = max(int((2 * int(end_pts - pts[0]) * scale_num + scale_den) // (2 * scale_den)), 1)
    indices = np.searchsorted(slots, np.arange(count), side="right") - 1
    return np.clip(indices, 0, len(starts) - 1)


def _rescale_near_inf(value: int, source: Fraction, target: Fraction) -> int:
    """``av_rescale_q(value, source, target)``: round half away from zero, in integers."""
    num = value * source.numerator * target.denominator
    den = source.denominator * target.numerator
    return (abs(num) * 2 + den) // (2 * den) * (1 if num >= 0 else -1)


def vsync_cfr_indices(
    pts: Sequence[int] | np.ndarray,
    durations: Sequence[int] | np.ndarray,
    timebase: Fraction,
    fps: float | Fraction,
) -> np.ndarray:
    """Input frame shown by each output frame of ``ffmpeg -i IN -r F OUT`` (``-fps_mode cfr``).

    This is the conversion syncnet_python's ``run_pipeline.py`` applies to every video
    (``ffmpeg -y -i IN -qscale:v 2 -async 1 -r 25 OUT``); it is not the ``fps`` filter
    (:func:`fps_filter_indices`). ffmpeg's ``video_sync_process`` keeps a running output time
    ``next_pts`` and, for each input frame of start ``s`` and duration ``d`` in output frames,
    computes the drift ``delta0 = s - next_pts`` and ``delta = delta0 + d``: the frame is
    dropped when ``delta < -1.1``, shown ``llrintf(delta)`` times when ``delta > 1.1`` (the
    first ``llrintf(delta0 - 0.6)`` of them showing the previous frame when ``delta0 > 1.1``)
    and shown once otherwise (a frame starting up to its duration early has ``delta0`` set to
    0). At the end the last frame is repeated the median of the last three "previous frame"
    counts. ``s`` is the start rescaled as ``adjust_frame_pts_to_encoder_tb`` does (integer
    rescaling to ``1 / (F << extra_bits)``, then nudged by ``2**-17`` off exact midpoints);
    ``d`` is the duration in double precision. ``pts`` start at 0.
    """
    rate = Fraction(fps).limit_denominator(1001)
    out_tb = 1 / rate
    extra_bits = min(max(29 - (out_tb.denominator.bit_length() - 1), 0), 16)
    fine_tb = Fraction(out_tb.numerator, out_tb.denominator << extra_bits)
    duration_scale = float(timebase) / float(out_tb)
    indices: list[int] = []
    history = [0, 0, 0]
    next_pts = 0
    for index, (start, duration) in enumerate(zip(pts, durations, strict=True)):
        sync = _rescale_near_inf(int(start), timebase, fine_tb) / float(1 << extra_bits)
        if sync != float(np.rint(sync)):
            sync += np.copysign(1.0 / (1 << 17), sync)
        delta0 = sync - next_pts
        delta = delta0 + int(duration) * duration_scale
        if delta0 < 0 < delta:
            delta0 = 0.0
        count, previous = 1, 0
        if delta < -1.1:
            count = 0
        elif delta > 1.1:
            count = int(np.rint(np.float32(delta)))
            if delta0 > 1.1:
                previous = int(np.rint(np.float32(delta0 - 0.6)))
        history = [previous, *history[:2]]
        indices += [index - 1 if k < previous and index > 0 else index for k in range(count)]
        next_pts += count
    if len(pts):  # end of stream: the last input frame, median-of-three times
        indices += [len(pts) - 1] * sorted(history)[1]
    return np.asarray(indices, dtype=np.int64)


def constant_rate_cfr_indices(num_frames: int, fps: float, target_fps: float) -> np.ndarray:
    """:func:`vsync_cfr_indices` for ``num_frames`` frames at an exactly constant ``fps``
    (what a constant-rate MP4 or a folder of frames holds) converted with ``-r target_fps``."""
    rate = Fraction(fps).limit_denominator(1001)
    timebase = Fraction(rate.denominator, rate.numerator)
    return vsync_cfr_indices(np.arange(num_frames), np.ones(num_frames, int), timebase, target_fps)


# stdout options of every decoding process: the selected frames, unchanged in number, as RGB
_RGB_PIPE = ("-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")


class _PipeChunks:
    """Batches of whole frames read from a decoder's pipe by a background thread.

    A pipe holds 64 KiB, less than one frame, so without a reader the decoder would stall
    whenever the caller is busy (detecting, resizing); the thread keeps up to ``ahead``
    batches decoded in advance. Iteration ends at end of stream or after ``total`` frames.
    """

    def __init__(self, pipe: Any, frame_bytes: int, batch: int, total: int, ahead: int = 2) -> None:
        self._pipe, self._frame_bytes, self._batch, self._total = pipe, frame_bytes, batch, total
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decode-pipe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        remaining = self._total
        try:
            while remaining > 0 and not self._stop.is_set():
                data = self._pipe.read(self._frame_bytes * min(self._batch, remaining))
                got = len(data) // self._frame_bytes
                if got:
                    self._put(data[: got * self._frame_bytes])
                    remaining -= got
                if got < min(self._batch, remaining + got):
                    break
        except (OSError, ValueError):  # the pipe was closed under us: the caller stopped
            pass
        finally:
            self._put(None)

    def _put(self, item: bytes | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[bytes]:
        while (item := self._queue.get()) is not None:
            yield item

    def close(self) -> None:
        """Stop reading; the thread exits once the decoder is gone."""
        self._stop.set()

    def join(self) -> None:
        """Wait for the thread, then close the pipe."""
        self._thread.join()
        self._pipe.close()


@dataclass
class VideoSource:
    """An opened clip: frames by index on a constant-rate timeline, plus what checks found.

    ``num_frames``/``fps`` describe that timeline (after any resampling); ``notes`` are the
    manifest notes (resampling, VFR, truncation, decoder fallback); ``backend`` is ``decord`` or
    ``ffmpeg``. ``cache_bytes`` bounds the decoded-frames file of :meth:`stream`'s
    ``keep_decoded`` (estimated at 3 bytes per pixel; 1 GiB keeps about 170 frames of 1080p).
    """

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    backend: str
    notes: list[str] = field(default_factory=list)
    cache_bytes: int = 1 << 30
    _reader: Any = None
    _index: np.ndarray | None = None
    _tmpdir: Path | None = None
    _cache_dir: Path | None = None
    _cache: Path | None = None

    def read(self, indices: list[int] | np.ndarray) -> np.ndarray:
        """Frames ``indices`` of the timeline as ``(n, H, W, 3)`` uint8 RGB."""
        wanted = np.asarray(indices, dtype=np.int64)
        if wanted.size == 0:
            return np.zeros((0, self.height, self.width, 3), dtype=np.uint8)
        if wanted.min() < 0 or wanted.max() >= self.num_frames:
            raise IndexError(f"frame indices outside 0..{self.num_frames - 1}")
        source = self._index[wanted] if self._index is not None else wanted
        return self._reader.get_batch(source.tolist()).asnumpy()

    def stream(
        self,
        indices: Sequence[int],
        *,
        region: tuple[int, int, int, int] | None = None,
        max_side: int | None = None,
        batch: int = 16,
        keep_decoded: bool = False,
    ) -> Iterator[tuple[np.ndarray, float]]:
        """Frames ``indices`` (sorted), decoded once front to back by an ffmpeg process.

        Yields batches ``((n, h, w, 3) uint8 RGB, scale)``: the frames cropped to ``region``
        (``x1, y1, x2, y2`` inside the frame, exclusive ends) and/or downscaled so the longer
        side is at most ``max_side`` (ffmpeg's ``area`` filter; ``scale`` is the factor
        applied, 1.0 without). Only the region and the sampled frames are converted to RGB,
        and ffmpeg decodes ahead in its own process while the caller works on a batch.
        Frames equal :meth:`read`'s (the timeline is rebuilt with the same ``fps`` filter;
        the region is cut in YUV with an even-aligned 2-pixel margin and trimmed after the
        RGB conversion, so chroma interpolation sees the same neighbours). Index patterns
        other than a contiguous range or a stride (plus the last frame) fall back to
        :meth:`read`.

        ``keep_decoded`` (for a pass that ends on the last frame, e.g. detection on a stride)
        also keeps every decoded frame, uncompressed in its native pixel format, in a
        temporary NUT file when the clip fits in ``cache_bytes``; later streams read that
        file instead of decoding the clip again (same pixels: only the decode is skipped).
        """
        wanted = [int(i) for i in indices]
        if not wanted:
            return
        plan = _selection(wanted)
        if plan is None:
            yield from self._stream_by_read(wanted, region, max_side, batch)
            return
        x1, y1, x2, y2 = region if region is not None else (0, 0, self.width, self.height)
        ex1, ey1 = max(0, (x1 - 2) // 2 * 2), max(0, (y1 - 2) // 2 * 2)
        ex2, ey2 = min(self.width, -(-(x2 + 2) // 2) * 2), min(self.height, -(-(y2 + 2) // 2) * 2)
        filters = [plan]
        if region is not None:
            filters.append(f"crop={ex2 - ex1}:{ey2 - ey1}:{ex1}:{ey1}")
        width, height = ex2 - ex1, ey2 - ey1
        scale = 1.0
        if max_side is not None and max(x2 - x1, y2 - y1) > max_side:
            if region is not None:
                raise ValueError("stream takes either a region or a max_side, not both")
            scale = max_side / max(width, height)
            width, height = max(1, round(width * scale)), max(1, round(height * scale))
            filters.append(f"scale={width}:{height}:flags=area")
        cache = None
        if (
            keep_decoded
            and self._cache is None
            and wanted[-1] == self.num_frames - 1
            and self.num_frames * self.width * self.height * 3 <= self.cache_bytes
        ):
            cache = self._scratch() / "decoded.nut"
        command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
        command += self._decode_graph(",".join(filters), cache)
        frame_bytes = width * height * 3
        trim = (
            (slice(y1 - ey1, y2 - ey1), slice(x1 - ex1, x2 - ex1))
            if region is not None
            else (slice(None), slice(None))
        )
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        chunks = _PipeChunks(process.stdout, frame_bytes, batch, len(wanted))
        delivered = 0
        finished = False
        try:
            for data in chunks:
                got = len(data) // frame_bytes
                frames = np.frombuffer(data, np.uint8).reshape(got, height, width, 3)
                yield np.ascontiguousarray(frames[:, trim[0], trim[1]]), scale
                delivered += got
            finished = True
        finally:
            chunks.close()
            if not (finished and cache is not None):
                process.kill()
            try:
                errors = process.stderr.read().decode(errors="replace")
            finally:
                process.stderr.close()
                returncode = process.wait()
                chunks.join()
            if cache is not None:
                if finished and delivered == len(wanted) and returncode == 0:
                    self._cache = cache
                else:
                    cache.unlink(missing_ok=True)
        if delivered < len(wanted):
            detail = _error_lines(errors)
            raise RuntimeError(
                f"ffmpeg delivered {delivered} of {len(wanted)} frames"
                + (f": {detail[0]}" if detail else "")
            )

    def _decode_graph(self, selected: str, cache: Path | None) -> list[str]:
        """ffmpeg input and output options: the timeline filtered by ``selected`` to RGB on
        stdout, plus (``cache``) every frame of the timeline, uncompressed, into that file."""
        if self._cache is not None:  # the timeline was decoded already: no fps filter again
            return ["-i", str(self._cache), "-map", "0:v:0", "-vf", selected, *_RGB_PIPE]
        source = self._tmpdir / "video.mp4" if self._tmpdir is not None else self.path
        timeline = (
            f"fps={Fraction(self.fps).limit_denominator(1001)}" if self._index is not None else ""
        )
        if cache is None:
            chain = f"{timeline},{selected}" if timeline else selected
            return ["-i", str(source), "-map", "0:v:0", "-vf", chain, *_RGB_PIPE]
        graph = f"[0:v:0]{timeline + ',' if timeline else ''}split=2[all][sel];[sel]{selected}[out]"
        return [
            "-i", str(source), "-filter_complex", graph,
            "-map", "[out]", *_RGB_PIPE,
            "-map", "[all]", "-fps_mode", "passthrough", "-c:v", "rawvideo", "-f", "nut",
            "-y", str(cache),
        ]  # fmt: skip

    def _scratch(self) -> Path:
        """This clip's temporary folder (removed by :meth:`close`)."""
        if self._cache_dir is None:
            self._cache_dir = Path(tempfile.mkdtemp(prefix="talking-heads-frames-"))
        return self._cache_dir

    def _stream_by_read(
        self,
        wanted: list[int],
        region: tuple[int, int, int, int] | None,
        max_side: int | None,
        batch: int,
    ) -> Iterator[tuple[np.ndarray, float]]:
        import cv2

        for begin in range(0, len(wanted), batch):
            frames = self.read(wanted[begin : begin + batch])
            if region is not None:
                x1, y1, x2, y2 = region
                frames = np.ascontiguousarray(frames[:, y1:y2, x1:x2])
            height, width = frames.shape[1:3]
            if max_side is None or max(height, width) <= max_side:
                yield frames, 1.0
                continue
            scale = max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
            yield np.stack(small), scale

    def close(self) -> None:
        """Release the decoder, any temporary transcode and the decoded-frames file."""
        self._reader = None
        for folder in (self._tmpdir, self._cache_dir):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        self._tmpdir = self._cache_dir = self._cache = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _selection(indices: list[int]) -> str | None:
    """An ffmpeg filter keeping exactly frames ``indices`` (a range or a stride plus the last
    frame), or None for other patterns."""
    first, last = indices[0], indices[-1]
    if indices == list(range(first, last + 1)):
        return f"trim=start_frame={first}:end_frame={last + 1}"
    body = indices[:-1] if len(indices) > 2 else indices
    step = body[1] - body[0] if len(body) > 1 else 1
    if step < 1 or body != list(range(first, body[-1] + 1, step)):
        return None
    keep = f"gte(n,{first})*lte(n,{body[-1]})*not(mod(n-{first},{step}))"
    if body is not indices:
        keep += f"+eq(n,{last})"
    return f"select='{keep}'"


def _decord_reader(path: Path) -> Any:
    """A decord reader; libav's own log lines are silenced (the checks here report problems)."""
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return re.sub(r"^\[[^\]]*\]\s*\S+:\d+:\s*", "", text[0])[:200] if text else type(error).__name__


def _resample_note(source_fps: float, fps: float) -> str:
    return f"resampled {source_fps:.3f} -> {fps:g} fps"


def _vfr_note(info: ContainerInfo) -> str:
    low, _, high = info.interval_spread()
    return f"variable frame rate (frame intervals {low * 1e3:.0f}-{high * 1e3:.0f} ms)"


def _decord_source(
    path: Path, info: ContainerInfo, target_fps: float | None, check: bool
) -> VideoSource | str:
    """The decord path, or the reason it cannot be trusted for this file."""
    try:
        reader = _decord_reader(path)
    except Exception as error:
        return f"decord cannot open it ({_first_line(error)})"
    count = len(reader)
    if count != info.num_frames:
        return f"decord counts {count} frames, the container {info.num_frames}"
    if count == 0:
        return "decord found no frames"
    stamps = reader.get_frame_timestamp(list(range(count)))
    starts = stamps[:, 0].astype(np.float64)
    expected = info.packet_times - info.packet_times[0]
    tolerance = 0.5 * (info.frame_duration or float(np.median(np.diff(starts))) or 1.0)
    if np.abs((starts - starts[0]) - expected).max() > tolerance:
        return "decord's frame timestamps disagree with the container's"
    if check:
        try:
            last = reader.get_batch([count - 1]).asnumpy()
        except Exception as error:
            return f"decord cannot decode the last frame ({_first_line(error)})"
        height, width = last.shape[1:3]
    else:
        height, width = reader[0].shape[:2]
    source_fps = count / info.end_s if info.end_s > 0 else float(reader.get_avg_fps())
    fps = float(reader.get_avg_fps())
    notes: list[str] = []
    index = None
    variable = info.is_variable_rate()
    if variable:
        notes.append(_vfr_note(info))
    out_fps = target_fps if target_fps else (info.typical_fps() if variable else None)
    if out_fps and (variable or abs(out_fps - fps) > 1e-3):
        index = fps_filter_indices(info.pts, info.end_pts, info.timebase, out_fps)
        notes.append(_resample_note(source_fps, out_fps))
        fps = float(out_fps)
        count = len(index)
    return VideoSource(
        path=path,
        num_frames=count,
        fps=fps,
        width=int(width),
        height=int(height),
        backend="decord",
        notes=notes,
        _reader=reader,
        _index=index,
    )


def _ffmpeg_source(
    path: Path, info: ContainerInfo, target_fps: float | None, why: str
) -> VideoSource:
    """Transcode the video stream losslessly to a constant rate, then read it with decord."""
    declared = info.fps or (info.num_frames / info.end_s if info.end_s else 25.0)
    variable = info.is_variable_rate()
    fps = float(target_fps or (info.typical_fps() if variable else declared))
    tmpdir = Path(tempfile.mkdtemp(prefix="talking-heads-decode-"))
    out = tmpdir / "video.mp4"
    result = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-an",
            "-vf",
            f"fps={fps:g}",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "mp4",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = _error_lines(result.stderr)
    try:
        reader = _decord_reader(out) if out.exists() and out.stat().st_size else None
        count = len(reader) if reader is not None else 0
    except Exception:
        reader, count = None, 0
    if reader is None or count == 0:
        shutil.rmtree(tmpdir, ignore_errors=True)
        detail = errors[0] if errors else "no frame decoded"
        raise UndecodableVideoError(f"cannot decode: {detail}")
    height, width = reader[0].shape[:2]
    notes = [f"decoded with ffmpeg: {why}"]
    if variable:
        notes.append(_vfr_note(info))
    if variable or abs(fps - declared) > 1e-3:
        notes.append(_resample_note(declared, fps))
    declared_s = info.duration_s or info.end_s
    if declared_s and count / fps < TRUNCATION_COVERAGE * declared_s:
        detail = f": {errors[0]}" if errors else ""
        notes.append(
            f"truncated: decoded {count / fps:.2f} s of the {declared_s:.2f} s the container "
            f"declares{detail}"
        )
    return VideoSource(
        path=path,
        num_frames=count,
        fps=fps,
        width=int(width),
        height=int(height),
        backend="ffmpeg",
        notes=notes,
        _reader=reader,
        _tmpdir=tmpdir,
    )


def open_video(
    path: Path | str, target_fps: float | None = None, check: bool = False
) -> VideoSource:
    """Open ``path`` checked against its container (see the module docstring).

    ``target_fps`` resamples to that constant rate; ``None`` keeps the native rate (a VFR clip
    still becomes constant-rate at its rounded average). ``check`` also decodes the last frame
    on the decord path (about a second on 1080p, so off by default: a damaged packet then
    surfaces when the frames are read, as a short read). Raises
    :class:`UndecodableVideoError` with the manifest reason.
    """
    path = Path(path)
    info = probe_container(path)
    source = _decord_source(path, info, target_fps, check)
    if isinstance(source, VideoSource):
        return source
    return _ffmpeg_source(path, info, target_fps, source)
