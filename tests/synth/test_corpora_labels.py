"""Classification corpora: layout and metadata parse as the real readers do; labels match audio."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from speechrep.synth.speech_commands import KEYWORDS

from .synth_helpers import (
    assert_says,
    best_correlation,
    manifest,
    normalised,
    read,
    requires_espeak,
    said,
    spoken,
)

pytestmark = requires_espeak
CLASSES_12 = [*KEYWORDS, "_unknown_", "_silence_"]


def _s3prl_hash_split(root: Path) -> tuple[list, list]:
    """s3prl's split_dataset: sha1 of the speaker hash, 10 % valid, 10 % test (dropped)."""
    train, valid = [], []
    for entry in root.iterdir():
        if not entry.is_dir() or entry.name == "_background_noise_":
            continue
        for path in entry.glob("*.wav"):
            speaker = re.sub(r"_nohash_.*$", "", path.name)
            value = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
            percentage = (value % 2**27) * (100.0 / (2**27 - 1))
            if percentage < 10:
                valid.append((entry.name, path))
            elif percentage >= 20:
                train.append((entry.name, path))
    return train, valid


def test_speech_commands(tiny_corpus):
    root = tiny_corpus("speech_commands")
    train_root, test_root = root / "speech_commands_v0.01", root / "speech_commands_test_set_v0.01"
    train, valid = _s3prl_hash_split(train_root)
    listed_valid = (train_root / "validation_list.txt").read_text().split()
    listed_test = set((train_root / "testing_list.txt").read_text().split())
    assert sorted(f"{w}/{p.name}" for w, p in valid) == sorted(
        listed_valid
    )  # lists obey the hash rule
    every = {
        f"{d.name}/{p.name}" for d in train_root.iterdir() if d.is_dir() for p in d.glob("*.wav")
    }
    assert listed_test and listed_test <= every and not listed_test & set(listed_valid)
    labels = {w if w in KEYWORDS else "_unknown_" for w, _ in train}
    assert labels | {"_silence_"} == set(CLASSES_12)  # 12-class KS after the usual mapping
    assert sorted(d.name for d in test_root.iterdir()) == sorted(CLASSES_12)
    backgrounds = sorted((train_root / "_background_noise_").glob("*.wav"))
    assert backgrounds and all(sf.info(str(p)).frames > 16000 for p in backgrounds)

    entries = manifest(root)
    for path, entry in entries.items():
        info = sf.info(str(root / path))
        assert info.samplerate == 16000 and info.subtype == "PCM_16"
        if "_background_noise_" not in path:
            assert info.frames == 16000, path  # one-second clips
        folder = Path(path).parent.name
        if folder in KEYWORDS:
            assert entry["text"] == folder == said(entry)  # each keyword folder holds that word
        elif folder == "_unknown_":
            assert entry["text"] not in KEYWORDS and entry["text"]
    clips = [e for e in entries.values() if e["text"] in ("yes", "no", "stop")][:3]
    for entry in clips:
        other = "go" if entry["text"] != "go" else "left"
        assert_says(root, entry, other, margin=0.3)


def test_voxceleb1(tiny_corpus):
    root = tiny_corpus("voxceleb1")
    iden = [line.split() for line in (root / "iden_split.txt").read_text().splitlines()]
    codes = {}
    for code, uid in iden:
        found = list(root.glob(f"*/wav/{uid}"))
        assert len(found) == 1, uid  # s3prl: exactly one file under */wav/
        codes.setdefault(uid.split("/")[0], set()).add(int(code))
        assert int(uid.split("/")[0][2:]) - 10001 >= 0  # s3prl's label formula
        assert re.fullmatch(r"id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav", uid)
    assert all(c == {1, 2, 3} for c in codes.values())  # every speaker in train, dev and test
    test_ids = {p.name for p in (root / "test" / "wav").iterdir()}
    dev_ids = {p.name for p in (root / "dev" / "wav").iterdir()}
    assert not test_ids & dev_ids and all(int(i[2:]) >= 10270 for i in test_ids)
    trials = [line.split() for line in (root / "veri_test.txt").read_text().splitlines()]
    assert {t[0] for t in trials} == {"0", "1"}
    for label, first, second in trials:
        assert (root / "test" / "wav" / first).is_file() and (
            root / "test" / "wav" / second
        ).is_file()
        assert (first.split("/")[0] == second.split("/")[0]) == (label == "1")

    entries = manifest(root)
    for path, entry in entries.items():
        assert entry["speaker"] == path.split("/")[2]
        assert sf.info(str(root / path)).duration > 2.0  # s3prl's SV drops clips under 2 s
    for entry in list(entries.values())[:2]:
        assert_says(root, entry, "the window opens quickly", margin=0.3)


def test_fluent_speech_commands(tiny_corpus):
    root = tiny_corpus("fluent_speech_commands")
    tables = {}
    for split in ("train", "valid", "test"):
        with open(root / "data" / f"{split}_data.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == [
            "",
            "path",
            "speakerId",
            "transcription",
            "action",
            "object",
            "location",
        ]
        assert [r[""] for r in rows] == [str(i) for i in range(len(rows))]  # pandas index column
        tables[split] = rows
    speakers = {s: {r["speakerId"] for r in rows} for s, rows in tables.items()}
    assert not (speakers["train"] & speakers["valid"] or speakers["train"] & speakers["test"])
    for slot in ("action", "object", "location"):  # s3prl builds the label maps from train
        train_values = {r[slot] for r in tables["train"]}
        assert all(r[slot] in train_values for s in ("valid", "test") for r in tables[s])
    entries = manifest(root)
    for rows in tables.values():
        for row in rows:
            assert re.fullmatch(r"wavs/speakers/[A-Za-z0-9]{16}/[0-9a-f-]{36}\.wav", row["path"])
            entry = entries[row["path"]]
            assert entry["text"] == row["transcription"] == said(entry)
            assert entry["speaker"] == row["speakerId"]
            assert (entry["action"], entry["object"], entry["location"]) == (
                row["action"],
                row["object"],
                row["location"],
            )
    row = tables["train"][0]
    assert_says(root, entries[row["path"]], "bring me the newspaper", margin=0.3)


def test_iemocap(tiny_corpus):
    root = tiny_corpus("iemocap")
    entries = manifest(root)
    found = {}
    for session in range(1, 6):  # s3prl's IEMOCAP parser
        wav_root = root / f"Session{session}" / "sentences" / "wav"
        for wav in sorted(wav_root.rglob("*.wav")):
            dialog = wav.parts[-2]
            content = (
                root / f"Session{session}" / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
            ).read_text()
            emotion = re.search(rf"{wav.stem}\t(.+)\t", content).groups()[0]
            relative = str(wav.relative_to(root))
            assert emotion == entries[relative]["emotion"]
            assert dialog.split("_")[0][-1] in "FM" and wav.stem.split("_")[-1][0] in "FM"
            assert re.search(
                rf"\[\d+\.\d{{4}} - \d+\.\d{{4}}\]\t{wav.stem}\t\w+\t\[[\d., ]+\]", content
            )
            found.setdefault(session, []).append(emotion)
    assert sorted(found) == [1, 2, 3, 4, 5]
    kept = [
        e
        for emotions in found.values()
        for e in emotions
        if e in ("neu", "hap", "exc", "ang", "sad")
    ]
    assert {"neu", "ang", "sad"} <= set(kept) and {"hap", "exc"} & set(kept)
    assert {"fru", "xxx"} & {e for emotions in found.values() for e in emotions}  # to be filtered

    # The emotion is in the audio: each file matches its emotional rendering better
    # than the same sentence said neutrally by the same voice.
    for emotion in ("sad", "ang", "hap"):
        entry = next(e for e in entries.values() if e["emotion"] == emotion)
        wav, rate = read(root, entry["path"])
        request = entry["render"][0]
        neutral_pitch = request["pitch"] - {"sad": -14, "ang": 6, "hap": 14}[emotion]
        own = best_correlation(wav, spoken(request, rate))
        neutral = best_correlation(
            wav, spoken(request, rate, pitch=neutral_pitch, amplitude=100, intonation="medium")
        )
        assert own > 0.8 and own > neutral + 0.2, (emotion, own, neutral)


def test_snips(tiny_corpus):
    root = tiny_corpus("snips")
    transcripts = {}
    for line in (root / "all.iob.snips.txt").read_text().splitlines():
        index, sentence = line.strip().split(" ", 1)
        transcripts[index] = sentence
    slots = (root / "slots.txt").read_text().split("\n")
    assert slots[0] == "O" and slots[-1] != ""  # first line skipped by s3prl; no trailing newline
    entries = manifest(root)
    speakers = {
        "train": {"Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"},
        "valid": {"Aditi", "Amy", "Geraint", "Nicole"},
        "test": {"Brian", "Emma", "Raveena", "Russell"},
    }
    for split, names in speakers.items():
        wavs = sorted((root / split).rglob("*.wav"))
        assert wavs and {w.stem.split("-")[0] for w in wavs} == names
        for wav in wavs:
            text_part, tag_part = transcripts[wav.stem].split("\t")
            words, tags = text_part.split(" ")[1:-1], tag_part.split(" ")[1:-1]
            intent = tag_part.split(" ")[-1]
            assert (
                text_part.startswith("BOS ")
                and text_part.endswith(" EOS")
                and tag_part.startswith("O ")
            )
            assert len(words) == len(tags) and set(tags) <= set(slots)
            entry = entries[f"{split}/{wav.name}"]
            assert " ".join(words) == entry["text"] == normalised(said(entry))
            assert intent == entry["intent"] and " ".join(tags) == entry["slots"]
    assert_says(root, next(iter(entries.values())), "what is the weather in paris", margin=0.3)


def test_audio_folder(tiny_corpus):
    root = tiny_corpus("audio_folder")
    audio = sorted(p for p in root.iterdir() if p.suffix == ".wav")
    assert len(audio) == 12 and all(p.is_file() for p in audio)
    assert {p.name for p in root.iterdir()} - {p.name for p in audio} == {
        "synth_manifest.jsonl",
        "README.synth.txt",
    }
    durations = [sf.info(str(p)).duration for p in audio]
    assert all(1.0 <= d <= 4.0 for d in durations) and np.std(durations) > 0.1
    assert {sf.info(str(p)).samplerate for p in audio} == {16000}
    entries = manifest(root)
    assert len({e["speaker"] for e in entries.values()}) == 4
    assert_says(root, entries[audio[0].name], "the window opens quickly", margin=0.3)
