import shutil

import numpy as np
import pytest

from speechrep.pretrain.data import (
    AudioDataset,
    AudioItem,
    BucketPlan,
    DataConfig,
    collate_wavs,
    read_manifest,
    scan_audio,
    select,
    write_manifest,
)


def test_scan_reports_and_skips_a_corrupt_file(tmp_path, audio_dir):
    root = tmp_path / "data"
    shutil.copytree(audio_dir, root)
    (root / "spk0" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    with pytest.warns(UserWarning, match=r"broken\.wav"):
        items = scan_audio(root)
    assert len(items) == 4 and all(it.num_samples > 12000 for it in items)
    write_manifest(tmp_path / "data.tsv", items, str(root))
    assert read_manifest(tmp_path / "data.tsv") == (items, str(root))


def test_folder_without_readable_audio_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no readable audio"):
        scan_audio(tmp_path)
    (tmp_path / "x.flac").write_bytes(b"nope")
    with (
        pytest.warns(UserWarning, match=r"x\.flac"),
        pytest.raises(ValueError, match="no readable audio"),
    ):
        scan_audio(tmp_path)
    with pytest.raises(FileNotFoundError):
        scan_audio(tmp_path / "missing")


def test_list_file_with_relative_paths(tmp_path, audio_dir):
    listing = audio_dir / "train.list"
    names = sorted(p.relative_to(audio_dir) for p in audio_dir.rglob("*.wav"))
    listing.write_text("# utterances\n" + "\n".join(map(str, names[:3])) + "\n")
    items = scan_audio(listing)
    assert [it.path for it in items] == [str(audio_dir / n) for n in names[:3]]


def test_select_by_duration():
    items = [AudioItem("a", 8000), AudioItem("b", 32000), AudioItem("c", 160000)]
    kept = select(items, DataConfig(min_seconds=1.0, max_seconds=5.0))
    assert [it.path for it in kept] == ["b"]
    with pytest.raises(ValueError, match="min_seconds"):
        select(items, DataConfig(min_seconds=20.0))


def lengths(n=200, seed=0):
    return np.random.default_rng(seed).integers(16000, 16000 * 12, size=n).tolist()


def test_bucket_plan_covers_every_utterance_once_and_is_seeded():
    config = DataConfig(batch_size=8, crop_seconds=10.0)
    plan = BucketPlan(lengths(), config, seed=1)
    epoch0 = plan(0)
    keys = [k for batch in epoch0 for k in batch]
    assert sorted(i for i, _ in keys) == list(range(200)) and max(map(len, epoch0)) == 8
    assert BucketPlan(lengths(), config, seed=1)(0) == epoch0  # a fresh plan: same batches
    assert plan(1) != epoch0 and BucketPlan(lengths(), config, seed=2)(0) != epoch0


def padding_share(plan_batches, lens):
    padded = sum(len(b) * max(lens[i] for i, _ in b) for b in plan_batches)
    return 1 - sum(lens) / padded


def test_buckets_group_similar_lengths_under_a_duration_cap():
    lens = np.minimum(lengths(), 16000 * 10).tolist()
    config = DataConfig(batch_size=16, max_batch_seconds=40.0, crop_seconds=10.0)
    batches = BucketPlan(lens, config, seed=0)(0)
    assert all(len(b) * max(lens[i] for i, _ in b) <= 40 * 16000 for b in batches)
    assert all(len(b) <= 16 for b in batches)
    rng = np.random.default_rng(0)
    shuffled = [
        [(int(i), 0) for i in chunk] for chunk in np.array_split(rng.permutation(200), len(batches))
    ]
    assert padding_share(batches, lens) < 0.1 < padding_share(shuffled, lens)


def test_ranks_get_disjoint_equal_shares():
    config = DataConfig(batch_size=7)
    full = BucketPlan(lengths(), config, seed=0)(0)
    shares = [BucketPlan(lengths(), config, seed=0, rank=r, world_size=2)(0) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == len(full) // 2
    assert (
        shares[0] == full[0 : 2 * len(shares[0]) : 2]
        and shares[1] == full[1 : 2 * len(shares[1]) : 2]
    )
    with pytest.raises(ValueError, match="processes"):
        BucketPlan([16000] * 3, config, seed=0, world_size=2)(0)


def test_crops_follow_the_seed_and_failed_files_are_replaced(audio_dir, tmp_path):
    items = scan_audio(audio_dir) + [AudioItem(str(tmp_path / "gone.wav"), 16000)]
    dataset = AudioDataset(items, DataConfig(crop_seconds=0.5))
    a, b, c = dataset[(0, 11)], dataset[(0, 11)], dataset[(0, 12)]
    assert len(a) == 8000 and np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.warns(UserWarning, match="gone.wav"):
        missing = dataset[(4, 0)]
    batch = collate_wavs([a, missing, dataset[(1, 0)]])
    assert batch.wavs.shape == (3, 8000) and batch.wav_lens.tolist() == [8000, 8000, 8000]
    assert np.array_equal(batch.wavs[1].numpy(), batch.wavs[2].numpy())  # a neighbour fills in
    with pytest.raises(ValueError, match="failed to decode"):
        collate_wavs([None, None])
