"""Transcribed, paired and mixed corpora: layout and metadata parse as the real readers do."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from speechrep.synth import CORPORA
from speechrep.synth.dsp import active_rms, rms, trim
from speechrep.synth.espeak import SpeakRequest, render

from .synth_helpers import (
    ARPABET_71,
    assert_says,
    best_correlation,
    manifest,
    normalised,
    read,
    requires_espeak,
    said,
)

pytestmark = requires_espeak
QUANTUM = 1.0 / 32768  # one 16-bit step


def _read_text(flac: Path) -> str:
    """s3prl's LibriSpeech read_text: look the utterance up in its chapter's trans.txt."""
    trans = "-".join(str(flac).split("-")[:-1]) + ".trans.txt"
    for line in open(trans):
        if line.split(" ")[0] == flac.stem:
            return line[:-1].split(" ", 1)[1]
    raise AssertionError(f"no transcript for {flac}")


def test_librispeech(tiny_corpus):
    root = tiny_corpus("librispeech")
    entries = manifest(root)
    lexicon = dict(
        line.split("\t") for line in (root / "librispeech-lexicon.txt").read_text().splitlines()
    )
    lexicon = {w: p.split() for w, p in lexicon.items()}
    assert all(set(p) <= ARPABET_71 for p in lexicon.values())  # s3prl's 71-phone vocabulary
    speakers_of = {}
    for split in ("train-clean-100", "dev-clean", "test-clean", "test-other"):
        flacs = sorted((root / split).rglob("*.flac"))
        assert flacs, split
        for flac in flacs:
            speaker, chapter, _ = flac.stem.split("-")
            assert flac.parent.name == chapter and flac.parent.parent.name == speaker
            transcript = _read_text(flac)
            assert re.fullmatch(r"[A-Z' ]+", transcript)
            entry = entries[str(flac.relative_to(root))]
            assert transcript == entry["text"] == normalised(said(entry))  # what was spoken
            assert all(word in lexicon for word in transcript.split())  # PR can map every word
            info = sf.info(str(flac))
            assert info.samplerate == 16000 and info.format == "FLAC" and 1.0 < info.duration < 20.0
            speakers_of.setdefault(speaker, set()).add(split)
    assert all(len(splits) == 1 for splits in speakers_of.values())  # no speaker in two splits
    # SPEAKERS.TXT as s3prl parses it: header line, then "ID | SEX | SUBSET | MINUTES | NAME".
    lines = (root / "SPEAKERS.TXT").read_text().splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if all(k in line for k in ("SEX", "SUBSET", "MINUTES", "NAME"))
    )
    genders = {
        int(parts[0]): parts[1].strip() for parts in (ln.split("|", 4) for ln in lines[start + 1 :])
    }
    assert set(genders) == {int(s) for s in speakers_of} and set(genders.values()) <= {"M", "F"}
    entry = next(iter(entries.values()))
    assert_says(root, entry, "THE WINDOW OPENS QUICKLY", margin=0.3)


def test_librimix(tiny_corpus):
    root = tiny_corpus("librimix")
    entries = manifest(root)
    for mode in ("min", "max"):
        metadata = root / "Libri2Mix" / "wav16k" / mode / "metadata"
        for part in ("train-100", "dev", "test"):
            with open(metadata / f"mixture_{part}_mix_both.csv", newline="") as f:
                rows = list(csv.reader(f))
            assert rows[0] == [
                "mixture_ID",
                "mixture_path",
                "source_1_path",
                "source_2_path",
                "noise_path",
                "length",
            ]
            assert len(rows) > 1 and (metadata / f"metrics_{part}_mix_clean.csv").is_file()
            for mixture_id, mix_path, s1_path, s2_path, noise_path, length in rows[1:]:
                first, second = mixture_id.split("_")
                assert first.split("-")[0] != second.split("-")[0]  # two different speakers
                assert re.search(r".*Libri2Mix/(.+)", mix_path)  # s3prl's diarization prep regex
                mix, s1, s2, noise = (
                    sf.read(p, dtype="float64")[0] for p in (mix_path, s1_path, s2_path, noise_path)
                )
                assert len(mix) == int(length) == len(s1) == len(s2)
                assert np.max(np.abs(mix - (s1 + s2 + noise))) <= 3 * QUANTUM  # the file is the sum
                assert np.max(np.abs(mix - (s1 + s2))) > 10 * QUANTUM  # ... and the noise matters
                lengths = [
                    sf.info(str(root / "LibriSpeech" / _source(root, entries, p))).frames
                    for p in (s1_path, s2_path)
                ]
                assert int(length) == (min(lengths) if mode == "min" else max(lengths))
    # s1 is the LibriSpeech source, rescaled: it correlates perfectly with the source file.
    row = rows[1]
    source, _ = sf.read(str(root / "LibriSpeech" / _source(root, entries, row[2])), dtype="float64")
    s1, _ = sf.read(row[2], dtype="float64")
    assert best_correlation(s1, source[: len(s1)]) > 0.999
    assert best_correlation(s1, np.roll(source, 4000)[: len(s1)]) < 0.9  # perturbed twin
    # Source speech activity, in the 10-field RTTM form s3prl's prepare_diarization reads.
    rttm = (root / "metadata" / "LibriSpeech" / "dev_clean.rttm").read_text().splitlines()
    for line in rttm:
        fields = re.split(" +", line.rstrip())
        assert len(fields) == 10 and fields[0] == "SPEAKER" and float(fields[4]) > 0.3


def _source(root: Path, entries: dict, absolute: str) -> str:
    relative = str(Path(absolute).relative_to(root))
    return entries[relative]["source"].removeprefix("LibriSpeech/")


def test_quesst14(tiny_corpus):
    root = tiny_corpus("quesst14")
    entries = manifest(root)

    def english(lst: str) -> list[Path]:  # s3prl's english_audio_paths
        paths = []
        for line in (root / "scoring" / lst).read_text().splitlines():
            audio_path, language = line.strip().split()
            if language == "nnenglish":
                paths.append(root / re.sub(r"^.*?\/", "", audio_path))
        return paths

    docs, dev, test = (english(f"language_key_{n}.lst") for n in ("utterances", "dev", "eval"))
    all_docs = (root / "scoring" / "language_key_utterances.lst").read_text().splitlines()
    assert docs and dev and test and len(all_docs) > len(docs)  # Czech utterances are filtered out
    for path in docs + dev + test:
        assert path.is_file() and sf.info(str(path)).samplerate == 8000
    for split, queries in (("dev", dev), ("eval", test)):
        folder = root / "scoring" / f"groundtruth_quesst14_{split}"
        term_ids = re.findall(
            r'termid="([^"]+)"', (folder / f"quesst14_{split}.tlist.xml").read_text()
        )
        assert sorted(term_ids) == sorted(q.stem for q in queries)
        hits = [
            line.split() for line in (folder / f"quesst14_{split}.rttm").read_text().splitlines()
        ]
        assert hits
        for _, doc, _, start, duration, query, *_ in hits:
            term = entries[f"{split}_queries/{query}.wav"]["text"]
            doc_entry = entries[f"Audio/{doc}.wav"]
            assert term in doc_entry["text"].split() and doc_entry["language"] == "en"
            wav, rate = read(root, f"Audio/{doc}.wav")
            assert float(start) + float(duration) <= len(wav) / rate
            request = next(r for r in doc_entry["render"] if r["text"] == term)
            word = trim(render(SpeakRequest(**request), rate), keep_seconds=0.0, sample_rate=rate)
            s = int(float(start) * rate) - 16  # the RTTM times are rounded to 1 ms
            segment = wav[max(0, s) : s + len(word) + 32]
            assert best_correlation(segment, word) > 0.9  # the term is there
            decoy = trim(
                render(
                    SpeakRequest(**{**request, "text": "basket" if term != "basket" else "candle"}),
                    rate,
                ),
                keep_seconds=0.0,
                sample_rate=rate,
            )
            assert best_correlation(segment, decoy[: len(word)]) < 0.8
        hit_docs = {(h[1], h[5]) for h in hits}
        for query in queries:  # every English doc containing the term is a hit, and no other
            term = entries[f"{split}_queries/{query.name}"]["text"]
            expected = {p.stem for p in docs if term in entries[f"Audio/{p.name}"]["text"].split()}
            assert expected == {d for d, q in hit_docs if q == query.stem}
    assert (root / "scoring" / "groundtruth_quesst14_dev" / "quesst14.ecf.xml").is_file()


def test_voicebank(tiny_corpus):
    root = tiny_corpus("voicebank")
    entries = manifest(root)
    pairs = {
        "clean_trainset_28spk_wav_16k": ("noisy_trainset_28spk_wav_16k", "trainset_28spk_txt"),
        "clean_testset_wav_16k": ("noisy_testset_wav_16k", "testset_txt"),
    }
    speakers = {}
    for clean_dir, (noisy_dir, text_dir) in pairs.items():
        names = sorted(p.name for p in (root / clean_dir).glob("*.wav"))
        assert names and names == sorted(p.name for p in (root / noisy_dir).glob("*.wav"))
        speakers[clean_dir] = {n.split("_")[0] for n in names}
        for name in names:
            clean, _ = read(root, f"{clean_dir}/{name}")
            noisy, _ = read(root, f"{noisy_dir}/{name}")
            assert len(clean) == len(noisy)
            entry = entries[f"{noisy_dir}/{name}"]
            snr = 20 * np.log10(active_rms(clean) / rms(noisy - clean))
            assert abs(snr - entry["snr_db"]) < 0.5, (name, snr, entry["snr_db"])
            prompt = (root / text_dir / name.replace(".wav", ".txt")).read_text()
            assert prompt == said(entry) + "\n" == said(entries[f"{clean_dir}/{name}"]) + "\n"
    assert speakers["clean_testset_wav_16k"] == {"p232", "p257"}
    assert {"p226", "p287"} <= speakers["clean_trainset_28spk_wav_16k"]  # SUPERB's dev speakers
    assert {e["snr_db"] for e in entries.values() if "noisy_test" in e["path"]} <= {
        17.5,
        12.5,
        7.5,
        2.5,
    }
    clean_entry = entries["clean_testset_wav_16k/p232_001.wav"]
    assert_says(root, clean_entry, "The window opens quickly.", margin=0.3)


def test_common_voice_and_covost2(tiny_corpus):
    assert CORPORA["covost2"] is CORPORA["common_voice"]
    root = tiny_corpus("common_voice")
    entries = manifest(root)

    def table(path: Path) -> list[dict]:
        with open(path, newline="") as f:
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))

    splits = {s: table(root / "en" / f"{s}.tsv") for s in ("train", "dev", "test")}
    columns = [
        "client_id",
        "path",
        "sentence",
        "up_votes",
        "down_votes",
        "age",
        "gender",
        "accent",
        "locale",
        "segment",
    ]
    assert list(splits["train"][0]) == columns
    clients = {s: {r["client_id"] for r in rows} for s, rows in splits.items()}
    assert not (clients["train"] & clients["dev"] or clients["train"] & clients["test"])
    validated = table(root / "en" / "validated.tsv")
    assert sorted(r["path"] for r in validated) == sorted(
        r["path"] for rows in splits.values() for r in rows
    )
    for rows in splits.values():
        for row in rows:
            clip = root / "en" / "clips" / row["path"]
            assert re.fullmatch(r"common_voice_en_\d{8}\.mp3", row["path"])
            assert sf.info(str(clip)).samplerate == 48000
            assert said(entries[f"en/clips/{row['path']}"]) == row["sentence"]
    # CoVoST's get_covost_splits: join validated.tsv with the release TSV on path.
    release = {r["path"]: r for r in table(root / "covost_tsv" / "covost_v2.en_de.tsv")}
    for split in splits:
        joined = [
            (r["path"], r["sentence"], release[r["path"]]["translation"], r["client_id"])
            for r in validated
            if release[r["path"]]["split"] == split
        ]
        written = [
            tuple(r.values()) for r in table(root / "covost_tsv" / f"covost_v2.en_de.{split}.tsv")
        ]
        assert sorted(joined) == sorted(written) and written
        assert all(r[2] and r[2] != r[1] and r[2].endswith(".") for r in written)
    entry = entries[f"en/clips/{splits['test'][0]['path']}"]
    assert_says(root, entry, "The window opens quickly.", margin=0.3)


def test_vcc2020(tiny_corpus):
    root = tiny_corpus("vcc2020")
    entries = manifest(root)
    lists = {p.stem: p.read_text().split() for p in (root / "lists").glob("*.txt")}
    prompts = {}
    for path in (root / "prompts").glob("*_transcriptions.txt"):
        for line in path.read_text().splitlines():
            utt, prompt = line.split(" ", 1)
            prompts[utt] = prompt
    for source in ("SEF1", "SEF2", "SEM1", "SEM2"):  # s3prl's eval set: every source, eval_list ids
        assert all((root / source / f"{n}.wav").is_file() for n in lists["eval_list"])
    for target in ("TEF1", "TEF2", "TEM1", "TEM2"):  # train list ids that exist for the target
        found = [n for n in lists["E_train_list"] if (root / target / f"{n}.wav").is_file()]
        assert found and all((root / target / f"{n}.wav").is_file() for n in lists["E_dev_list"])
    for target, letter in (("TFF1", "F"), ("TGM1", "G"), ("TMF1", "M")):
        assert all((root / target / f"{n}.wav").is_file() for n in lists[f"{letter}_train_list"])
    for path, entry in entries.items():
        speaker, utt = path[:-4].split("/")
        assert said(entry) == prompts[utt] and sf.info(str(root / path)).samplerate == 24000
    # E1 numbers are parallel: a source and a target say the same sentence.
    shared = sorted(
        set(p.name for p in (root / "SEF1").glob("E1*.wav"))
        & set(p.name for p in (root / "TEM1").glob("*"))
    )
    assert shared and entries[f"SEF1/{shared[0]}"]["text"] == entries[f"TEM1/{shared[0]}"]["text"]
    assert_says(root, entries[f"TEM1/{shared[0]}"], "The window opens quickly.", margin=0.3)
