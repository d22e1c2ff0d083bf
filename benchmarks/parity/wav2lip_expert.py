"""The lip-sync expert: our ``SyncNetColor`` + ``cosine_loss`` and our training windows
against upstream's ``SyncNet_color``, ``color_syncnet_train.cosine_loss`` and its window
arithmetic, on identical weights and the demo's clip.

    python benchmarks/parity/wav2lip_expert.py --official-repo PATH/Wav2Lip \\
        [--checkpoint lipsync_expert.pth] [--seeds 0,1,2] [--windows 32]

For each of ``--windows`` (start, wrong, label) draws over the demo's ``wav2lip``-recipe crop
(``results/preprocessed/demo/wav2lip``; run the demo first), upstream's side builds the
expert's input from the same decoded BGR frames with ``color_syncnet_train``'s steps (frames
concatenated on channels, /255, lower half) and its mel chunk with upstream's
``audio.melspectrogram`` (librosa 0.7's behaviour, see ``wav2lip.py``) and
``Dataset.crop_audio_window``; ours is ``LipSyncWindowDataset.item``. Both networks carry the
same weights (a released ``lipsync_expert.pth``, else the official module built with each
seed, BatchNorm statistics randomised, saved in upstream's layout and loaded by our
``load_expert_state``). Printed: the largest differences of the inputs, of the sync
probabilities (cosine similarities) and of the BCE losses; exit status 0 when the
probabilities and losses agree within 1e-5.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from wav2lip import librosa_07

SHARDS = common.PROJECT_ROOT / "results" / "preprocessed" / "demo" / "wav2lip"
TOLERANCE = 1e-5


def official_side(
    repo: Path,
    frames: np.ndarray,
    wav: np.ndarray,
    draws: list,
    seed: int,
    checkpoint: Path | None,
    work: Path,
):
    """Upstream's inputs, sync probabilities and losses, and the weights file it used."""
    saved = sys.argv
    sys.argv = ["color_syncnet_train.py", "--data_root", str(work), "--checkpoint_dir", str(work)]
    try:
        with common.official_code(repo), librosa_07():
            import audio
            import color_syncnet_train as official
            from models import SyncNet_color

            torch.manual_seed(seed)
            net = SyncNet_color()
            if checkpoint is None:
                common.randomise_batchnorm_stats(net, seed=seed)
                checkpoint = work / f"lipsync_expert_seed{seed}.pth"
                torch.save(
                    {
                        "state_dict": net.state_dict(),
                        "optimizer": None,
                        "global_step": 0,
                        "global_epoch": 0,
                    },
                    checkpoint,
                )
            else:
                net.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
            net.eval()
            orig_mel = audio.melspectrogram(wav).T
            dataset = object.__new__(official.Dataset)
            faces, mels, labels = [], [], []
            for start, wrong, label in draws:
                chosen = start if label else wrong
                window = [frames[i] for i in range(chosen, chosen + 5)]
                x = np.concatenate(window, axis=2) / 255.0
                x = x.transpose(2, 0, 1)
                faces.append(x[:, x.shape[1] // 2 :])
                mels.append(dataset.crop_audio_window(orig_mel.copy(), f"{start}.jpg").T)
                labels.append([float(label)])
            x = torch.FloatTensor(np.stack(faces))
            mel = torch.FloatTensor(np.stack(mels)).unsqueeze(1)
            y = torch.FloatTensor(labels)
            with torch.no_grad():
                a, v = net(mel, x)
                probability = torch.nn.functional.cosine_similarity(a, v)
                losses = [
                    float(official.cosine_loss(a[i : i + 1], v[i : i + 1], y[i : i + 1]))
                    for i in range(len(y))
                ]
    finally:
        sys.argv = saved
    return x, mel, probability, np.array(losses), checkpoint


def our_side(checkpoint: Path, draws: list):
    from talking_heads.models.lipsync.networks import SyncNetColor, cosine_loss
    from talking_heads.models.lipsync.training import load_expert_state
    from talking_heads.training.datamodule import load_clip_table
    from talking_heads.training.lipsync_data import LipSyncWindowDataset

    dataset = LipSyncWindowDataset(load_clip_table(SHARDS))
    items = [dataset.item(0, start, wrong, float(label)) for start, wrong, label in draws]
    x = torch.stack([i["expert_faces"] for i in items])
    mel = torch.stack([i["mel"] for i in items])
    y = torch.stack([i["expert_label"] for i in items])
    net = SyncNetColor()
    net.load_state_dict(load_expert_state(checkpoint), strict=True)
    net.eval()
    with torch.no_grad():
        a, v = net(mel, x)
        probability = torch.nn.functional.cosine_similarity(a, v)
        losses = [
            float(cosine_loss(a[i : i + 1], v[i : i + 1], y[i : i + 1])) for i in range(len(y))
        ]
    return x, mel, probability, np.array(losses), dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="a released lipsync_expert.pth")
    parser.add_argument("--seeds", type=common.parse_seeds, default=common.DEFAULT_SEEDS)
    parser.add_argument("--windows", type=int, default=32)
    parser.add_argument("--work", type=Path, default=Path("/tmp/parity_wav2lip_expert"))
    args = parser.parse_args()
    if not (SHARDS / "manifest.parquet").is_file():
        raise SystemExit(f"{SHARDS}: run the demo first (snakemake --cores all)")
    from talking_heads.preprocess.audio import read_wav
    from talking_heads.training.datamodule import load_clip_table
    from talking_heads.training.lipsync_data import LipSyncWindowDataset

    args.work.mkdir(parents=True, exist_ok=True)
    probe = LipSyncWindowDataset(load_clip_table(SHARDS))
    path, _, last, _ = probe.items[0]
    frames = probe._clip(path)
    wav, _ = read_wav(Path(path).parent.parent / "audio" / f"{Path(path).stem}.wav")
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(args.windows):
        start, wrong = (int(v) for v in rng.choice(last + 1, size=2, replace=False))
        draws.append((start, wrong, int(rng.integers(2))))
    worst = 0.0
    for seed in [None] if args.checkpoint else args.seeds:
        label = "checkpoint" if seed is None else f"seed {seed}"
        ox, omel, oprob, oloss, checkpoint = official_side(
            args.official_repo, frames, wav, draws, seed or 0, args.checkpoint, args.work
        )
        x, mel, prob, loss, _ = our_side(checkpoint, draws)
        d_prob = float((prob - oprob).abs().max())
        d_loss = float(np.abs(loss - oloss).max())
        print(
            f"expert {label}: {len(draws)} windows; inputs: faces max |Δ| "
            f"{float((x - ox).abs().max()):.2e}, mels {float((mel - omel).abs().max()):.2e}; "
            f"sync probability max |Δ| {d_prob:.2e} (range {float(oprob.min()):.4f}-"
            f"{float(oprob.max()):.4f}); BCE loss max |Δ| {d_loss:.2e} -> "
            f"{'OK' if max(d_prob, d_loss) <= TOLERANCE else 'FAIL'}"
        )
        worst = max(worst, d_prob, d_loss)
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
