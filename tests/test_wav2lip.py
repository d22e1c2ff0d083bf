"""Wav2Lip: official layouts and strict import, the inference pipeline of upstream's
``inference.py`` (chunking, smoothing, frame reuse, paste-back) and its documented departures
(faceless frames kept, stills, any audio container, variable frame rate), and training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from talking_heads.models import METHODS
from talking_heads.models.checkpoints import CheckpointError, CheckpointLayoutError
from talking_heads.models.interface import AudioClip, GenerationInputs, InputError
from talking_heads.models.lipsync.generate import inference_chunk_count, mel_chunks
from talking_heads.models.lipsync.inference import smooth_boxes
from talking_heads.models.lipsync.networks import SyncNetColor, VisualQualityDisc, Wav2LipUNet
from talking_heads.models.wav2lip.generate import Wav2LipGenerator
from talking_heads.models.wav2lip.module import Wav2LipLightning
from talking_heads.preprocess.audio import melspectrogram

LAYOUTS = json.loads(
    (Path(__file__).parent / "data" / "official_layouts" / "wav2lip.json").read_text()
)["layouts"]
RATE = 16_000


def _shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def _speech(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.3 * envelope * np.sin(2 * np.pi * 180 * t)).astype(np.float32)


def _official_file(path: Path, module: torch.nn.Module, *, prefix: str = "") -> Path:
    """A file in upstream's checkpoint layout (``save_checkpoint``)."""
    state = {prefix + k: v for k, v in module.state_dict().items()}
    torch.save(
        {"state_dict": state, "optimizer": None, "global_step": 258000, "global_epoch": 88}, path
    )
    return path


def _our_checkpoint(path: Path, width: int = 8) -> Path:
    import pytorch_lightning as pl

    torch.manual_seed(0)
    module = Wav2LipLightning(width=width, expert={"checkpoint": None, "steps": 0})
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": pl.__version__,
            "method": "wav2lip",
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Wav2LipGenerator:
    path = _our_checkpoint(tmp_path_factory.mktemp("w2l") / "model.ckpt")
    return Wav2LipGenerator.from_checkpoint(path)


# -- layouts and import ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "build"),
    [
        ("wav2lip.pth", Wav2LipUNet),
        ("wav2lip_gan.pth", Wav2LipUNet),
        ("lipsync_expert.pth", SyncNetColor),
        ("visual_quality_disc.pth", VisualQualityDisc),
    ],
)
def test_networks_have_the_released_files_layouts(file: str, build: type) -> None:
    assert _shapes(build()) == LAYOUTS[file]


def test_released_files_import_strictly_with_expert_and_disc(tmp_path: Path) -> None:
    torch.manual_seed(1)
    official = Wav2LipUNet().eval()
    expert, disc = SyncNetColor(), VisualQualityDisc()
    _official_file(tmp_path / "wav2lip_gan.pth", official, prefix="module.")
    _official_file(tmp_path / "lipsync_expert.pth", expert)
    _official_file(tmp_path / "visual_quality_disc.pth", disc)
    out = METHODS.get("wav2lip").import_official(
        tmp_path / "wav2lip_gan.pth", tmp_path / "ours.ckpt", "wav2lip_gan_lrs2"
    )
    saved = torch.load(out, weights_only=True)
    assert saved["imported_from"]["file"] == "wav2lip_gan.pth"
    assert saved["imported_from"]["epoch"] == 88
    assert saved["hyper_parameters"]["train"]["disc_wt"] == pytest.approx(0.07)
    for prefix, network in (("generator", official), ("expert", expert), ("disc", disc)):
        for key, value in network.state_dict().items():
            assert torch.equal(saved["state_dict"][f"{prefix}.{key}"], value), key
    ours = Wav2LipGenerator.from_checkpoint(out).generator
    faces, mels = torch.rand(2, 6, 96, 96), torch.randn(2, 1, 80, 16)
    with torch.no_grad():
        assert torch.equal(ours(mels, faces), official(mels, faces))


def test_the_wrong_files_are_refused_with_what_they_hold(tmp_path: Path) -> None:
    spec = METHODS.get("wav2lip")
    expert = _official_file(tmp_path / "lipsync_expert.pth", SyncNetColor())
    with pytest.raises(CheckpointLayoutError, match="holds the SyncNet_color lip-sync expert, not"):
        spec.import_official(expert, tmp_path / "out.ckpt")
    emotional = _official_file(tmp_path / "emo.pth", Wav2LipUNet(width=8, emotions=6))
    with pytest.raises(
        CheckpointLayoutError, match=r"emo\.pth is an emogen checkpoint, not wav2lip"
    ):
        spec.import_official(emotional, tmp_path / "out.ckpt")
    fomm_like = tmp_path / "vox-cpk.pth.tar"
    torch.save({"generator": {}, "kp_detector": {}, "discriminator": {}}, fomm_like)
    with pytest.raises(CheckpointLayoutError, match="is a fomm checkpoint, not wav2lip"):
        spec.import_official(fomm_like, tmp_path / "out.ckpt")


def test_a_missing_key_is_listed(tmp_path: Path) -> None:
    state = {f"module.{k}": v for k, v in Wav2LipUNet().state_dict().items()}
    del state["module.output_block.1.bias"]
    path = tmp_path / "wav2lip.pth"
    torch.save({"state_dict": state, "optimizer": None, "global_step": 0, "global_epoch": 0}, path)
    with pytest.raises(CheckpointLayoutError, match=r"1 missing: output_block\.1\.bias"):
        METHODS.get("wav2lip").import_official(path, tmp_path / "out.ckpt")


def test_an_official_file_given_to_lipsync_says_to_import_it(tmp_path: Path) -> None:
    path = _official_file(tmp_path / "wav2lip.pth", Wav2LipUNet(width=8), prefix="module.")
    with pytest.raises(CheckpointError, match="is an official wav2lip file: convert it first"):
        METHODS.get("wav2lip").load_generator(path)


# -- upstream's arithmetic ------------------------------------------------------------------


def _upstream_chunks(mel: np.ndarray, fps: float) -> list[np.ndarray]:
    """``inference.py``'s chunk loop, transcribed."""
    chunks, i = [], 0
    while True:
        start = int(i * (80.0 / fps))
        if start + 16 > len(mel[0]):
            chunks.append(mel[:, len(mel[0]) - 16 :])
            break
        chunks.append(mel[:, start : start + 16])
        i += 1
    return chunks


@pytest.mark.parametrize(("seconds", "fps"), [(1.0, 25.0), (1.37, 25.0), (0.9, 29.97), (2.0, 24.0)])
def test_mel_chunks_are_upstreams(seconds: float, fps: float) -> None:
    samples = _speech(seconds)
    mel = melspectrogram(samples)
    expected = _upstream_chunks(mel, fps)
    ours = mel_chunks(AudioClip(samples, RATE), fps)
    assert inference_chunk_count(mel.shape[1], fps) == len(expected) == len(ours)
    assert all(np.array_equal(a, b) for a, b in zip(ours, expected, strict=True))


def test_box_smoothing_is_upstreams_in_place_mean() -> None:
    rng = np.random.default_rng(0)
    boxes = rng.integers(0, 200, size=(9, 4))
    expected = boxes.copy()
    for i in range(len(expected)):  # upstream get_smoothened_boxes, in place
        window = expected[len(expected) - 5 :] if i + 5 > len(expected) else expected[i : i + 5]
        expected[i] = np.mean(window, axis=0)
    assert np.array_equal(smooth_boxes(boxes), expected)
    assert smooth_boxes(boxes).dtype == boxes.dtype


def test_audio_needs_16k_and_no_nan() -> None:
    with pytest.raises(InputError, match="16000 Hz"):
        mel_chunks(AudioClip(_speech(1.0, 44_100), 44_100), 25.0)


# -- the pipeline ---------------------------------------------------------------------------


def _face_frames(count: int) -> torch.Tensor:
    image = torch.from_numpy(skimage.data.astronaut()[::2, ::2].copy()).permute(2, 0, 1)
    return image.float().div(255).expand(count, -1, -1, -1).clone()


def test_audio_longer_than_the_video_reuses_frames(generator: Wav2LipGenerator) -> None:
    faces = _face_frames(3)
    faces[1] *= 0.5  # frames differ outside the box too
    inputs = GenerationInputs(face=faces, audio=AudioClip(_speech(0.6), RATE), fps=25.0)
    out = generator.synthesize(inputs, {"box": "20,120,60,160"}, device="cpu")
    assert len(out) == inference_chunk_count(melspectrogram(_speech(0.6)).shape[1], 25.0) > 3
    outside = (slice(None), slice(0, 20))
    for i in range(len(out)):
        assert torch.allclose(out[i][outside], faces[i % 3][outside], atol=1 / 255)


def test_audio_shorter_than_the_video_cuts_it(generator: Wav2LipGenerator) -> None:
    inputs = GenerationInputs(face=_face_frames(30), audio=AudioClip(_speech(0.4), RATE), fps=25.0)
    out = generator.synthesize(inputs, {"box": "20,120,60,160"}, device="cpu")
    assert len(out) == inference_chunk_count(melspectrogram(_speech(0.4)).shape[1], 25.0) < 30


def test_the_box_region_is_resynthesised_and_the_rest_kept(generator: Wav2LipGenerator) -> None:
    faces = _face_frames(2)
    inputs = GenerationInputs(face=faces, audio=AudioClip(_speech(0.2), RATE), fps=25.0)
    out = generator.synthesize(inputs, {"box": "20,120,60,160"}, device="cpu")
    assert torch.allclose(out[:, :, :20], faces[: len(out), :, :20], atol=1 / 255)
    assert (out[:, :, 20:120, 60:160] - faces[: len(out), :, 20:120, 60:160]).abs().max() > 0.1


def test_a_still_image_is_every_frame(generator: Wav2LipGenerator) -> None:
    faces = _face_frames(4)
    faces[1:] = 0  # static: only the first frame is used
    inputs = GenerationInputs(face=faces, audio=AudioClip(_speech(0.5), RATE), fps=25.0)
    out = generator.synthesize(inputs, {"box": "20,120,60,160", "static": True}, device="cpu")
    assert len(out) > 4
    assert torch.allclose(out[:, :, :20], faces[0, :, :20].expand(len(out), -1, -1, -1), atol=1e-6)


def test_frames_without_a_face_are_kept_with_a_note(generator: Wav2LipGenerator) -> None:
    faces = _face_frames(6)
    faces[2] = 128 / 255  # a grey frame: no face
    inputs = GenerationInputs(face=faces, audio=AudioClip(_speech(0.3), RATE), fps=25.0)
    out = generator.synthesize(inputs, {"detector": "dlib_hog", "nosmooth": True}, device="cpu")
    assert torch.equal(out[2], torch.full_like(out[2], 128 / 255))
    assert generator.notes == [f"no face in 1 of {len(out)} frames: kept unchanged"]
    assert (out[0] - faces[0]).abs().max() > 0.1  # a face frame is re-synthesised


def test_no_face_anywhere_is_one_clear_error(generator: Wav2LipGenerator) -> None:
    inputs = GenerationInputs(
        face=torch.full((3, 3, 64, 64), 0.5), audio=AudioClip(_speech(0.2), RATE), fps=25.0
    )
    with pytest.raises(InputError, match="no face found in any frame"):
        generator.synthesize(inputs, {"detector": "dlib_hog"}, device="cpu")


def test_stereo_44k_and_a_video_give_the_same_audio_as_16k_mono(tmp_path: Path) -> None:
    import soundfile

    from talking_heads.inference.run import load_inputs
    from talking_heads.utils.media import write_video

    mono = _speech(1.0, 44_100)
    soundfile.write(tmp_path / "stereo.wav", np.stack([mono, mono], axis=1), 44_100)
    frames = (skimage.data.astronaut()[None, ::4, ::4]).repeat(25, axis=0)
    write_video(tmp_path / "talk.mp4", frames, 25.0, audio=tmp_path / "stereo.wav", crf=0)
    stereo = load_inputs({"audio": tmp_path / "stereo.wav"}).audio
    video = load_inputs({"audio": tmp_path / "talk.mp4"}).audio
    assert stereo.sample_rate == video.sample_rate == RATE
    assert abs(len(stereo.samples) - RATE) <= 1
    n = min(len(stereo.samples), len(video.samples)) - 2000
    # the video's track went through AAC: the same speech, not the same samples
    assert np.corrcoef(stereo.samples[:n], video.samples[:n])[0, 1] > 0.95
    reference = np.interp(np.arange(RATE) / RATE, np.arange(len(mono)) / 44_100, mono)
    assert np.corrcoef(stereo.samples[: RATE - 100], reference[: RATE - 100])[0, 1] > 0.99


def test_a_variable_frame_rate_face_video_is_put_on_a_constant_timeline(tmp_path: Path) -> None:
    import subprocess

    from talking_heads.inference.run import load_inputs
    from talking_heads.utils.media import ffmpeg_exe, write_video

    frames = (skimage.data.astronaut()[None, ::4, ::4]).repeat(50, axis=0).copy()
    frames[:, :8] = np.arange(50, dtype=np.uint8)[:, None, None, None] * 5
    write_video(tmp_path / "cfr.mp4", frames, 25.0, crf=0)
    # drop every third frame keeping the timestamps: 25 fps nominal, 2 s, 34 frames
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-i",
            str(tmp_path / "cfr.mp4"),
            "-vf",
            "select='mod(n\\,3)'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            str(tmp_path / "vfr.mp4"),
        ],
        check=True,
    )
    inputs = load_inputs({"face": tmp_path / "vfr.mp4"})
    duration = len(inputs.face) / inputs.fps
    assert duration == pytest.approx(2.0, abs=0.1)
    assert inputs.face_path == tmp_path / "vfr.mp4"


# -- training -------------------------------------------------------------------------------


def _batch(size: int = 2) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "window": torch.rand(size, 3, 5, 96, 96),
        "wrong": torch.rand(size, 3, 5, 96, 96),
        "mel": torch.randn(size, 1, 80, 16),
        "indiv_mels": torch.randn(size, 5, 1, 80, 16),
        "expert_faces": torch.rand(size, 15, 48, 96),
        "expert_label": torch.tensor([[1.0], [0.0]]),
    }


def test_generator_loss_is_upstreams_weighted_sum() -> None:
    module = Wav2LipLightning(width=8, train={"disc_wt": 0.07, "syncnet_wt_initial": 0.03})
    total, parts, generated = module.generator_losses(_batch())
    expected = 0.03 * parts["sync"] + 0.07 * parts["adv"] + (1 - 0.03 - 0.07) * parts["l1"]
    assert torch.allclose(total, expected)
    assert generated.shape == (2, 3, 5, 96, 96)
    masked = module.masked_input(_batch()["window"], _batch()["wrong"])
    assert masked[:, :3, :, 48:].abs().sum() == 0 and masked[:, :3, :, :48].abs().sum() > 0


def test_training_runs_the_expert_stage_then_the_generator(tmp_path: Path) -> None:
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    class Windows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 8

        def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
            return {k: v[index % 2] for k, v in _batch().items()}

    module = Wav2LipLightning(
        width=8,
        expert={"checkpoint": None, "steps": 3},
        train={"syncnet_wt": 0.01, "sync_threshold": 10.0},
    )
    expert_before = {k: v.clone() for k, v in module.expert.state_dict().items()}
    generator_before = {k: v.clone() for k, v in module.generator.state_dict().items()}
    trainer = pl.Trainer(
        max_steps=6,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
        limit_val_batches=1,
    )
    loader = DataLoader(Windows(), batch_size=2)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    assert trainer.global_step == 6
    expert_after = module.expert.state_dict()
    changed = [k for k in expert_before if not torch.equal(expert_before[k], expert_after[k])]
    assert any(k.endswith("weight") for k in changed)
    gen_after = module.generator.state_dict()
    assert any(not torch.equal(generator_before[k], gen_after[k]) for k in generator_before)
    assert not any(p.requires_grad for p in module.expert.parameters())
    # eval sync loss below the threshold switched the sync weight on
    assert float(module.syncnet_wt) == pytest.approx(0.01)


def test_a_missing_expert_names_the_file_where_to_get_it_and_the_alternative(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "lipsync_expert.pth"
    with pytest.raises(FileNotFoundError) as error:
        Wav2LipLightning(width=8, expert={"checkpoint": str(missing)})
    message = str(error.value)
    assert str(missing) in message and "github.com/Rudrabha/Wav2Lip" in message
    assert "model.expert.checkpoint=null model.expert.steps=N" in message
