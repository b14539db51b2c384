"""IEMOCAP (emotion recognition, SUPERB ER: 4 classes, leave-one-session-out, 5 folds).

Layout (``IEMOCAP_full_release/``)::

    Session{1..5}/sentences/wav/<dialog>/<dialog>_<F|M><nnn>.wav       16 kHz, 16-bit
    Session{n}/dialog/EmoEvaluation/<dialog>.txt     "[start - end]\\t<utt>\\t<emo>\\t[V, A, D]"
    Session{n}/dialog/transcriptions/<dialog>.txt    "<utt> [start-end]: text"

Dialogs are ``Ses0{n}{F|M}_impro0k`` / ``Ses0{n}{F|M}_script0k_1``; each session has one
female and one male talker. Emotions are rendered as prosody: happy/excited higher,
faster, wider pitch range; angry loud, fast and tense; sad low, slow, monotone; neutral
as spoken. ``fru`` and ``xxx`` turns are included so readers must filter them, as with
the real data (SUPERB keeps neu, hap+exc, ang, sad).
"""

from __future__ import annotations

from dataclasses import dataclass

from speechrep.synth import dsp, text
from speechrep.synth.core import SynthContext
from speechrep.synth.voices import Speaker, sample_speakers

RATE = 16000
EMOTIONS = ("neu", "hap", "exc", "ang", "sad", "fru", "xxx")
# emotion -> (pitch shift, speed scale, amplitude, intonation, loudness dB, (valence, arousal, dominance))
PROSODY = {
    "neu": (0, 1.0, 100, "medium", 0.0, (3.0, 2.5, 2.5)),
    "hap": (14, 1.12, 125, "x-high", 3.0, (4.0, 3.5, 3.0)),
    "exc": (18, 1.18, 135, "x-high", 4.0, (4.0, 4.0, 3.5)),
    "ang": (6, 1.22, 175, "high", 6.0, (1.5, 4.0, 4.0)),
    "sad": (-14, 0.78, 65, "x-low", -6.0, (1.5, 1.5, 2.0)),
    "fru": (3, 1.08, 140, "low", 3.0, (2.0, 3.5, 3.0)),
    "xxx": (0, 1.0, 100, "medium", 0.0, (2.5, 2.5, 2.5)),
}
EVALUATOR_WORDS = {
    "neu": "Neutral",
    "hap": "Happiness",
    "exc": "Excited",
    "ang": "Anger",
    "sad": "Sadness",
    "fru": "Frustration",
    "xxx": "Other",
}


@dataclass(frozen=True)
class Size:
    improvised: int  # dialogs per session
    scripted: int
    turns: int  # utterances per dialog


SIZES = {"tiny": Size(1, 1, 3), "small": Size(2, 2, 10)}


def build(ctx: SynthContext) -> None:
    """IEMOCAP Session1-5 sentence wavs + EmoEvaluation labels (emotion as prosody)."""
    size = SIZES[ctx.size]
    names = [f"Ses0{s}{g}" for s in range(1, 6) for g in ("F", "M")]
    speakers = dict(
        zip(names, sample_speakers(ctx.rng, names, genders=[n[-1] for n in names]), strict=True)
    )
    dialogs = []  # (session, dialog name, [(utt, speaker, emotion, sentence, request)])
    counter = 0
    for session in range(1, 6):
        for kind, count in (("impro", size.improvised), ("script", size.scripted)):
            for k in range(1, count + 1):
                lead = "FM"[int(ctx.rng.integers(2))]
                dialog = f"Ses0{session}{lead}_{kind}0{k}" + ("_1" if kind == "script" else "")
                turns = []
                for t in range(size.turns):
                    gender = "FM"[(t + (lead == "M")) % 2]
                    emotion = EMOTIONS[counter % len(EMOTIONS)]
                    counter += 1
                    speaker = speakers[f"Ses0{session}{gender}"]
                    said = text.sentence(ctx.rng_for("text", dialog, t), 4, 8)
                    turns.append(
                        (
                            f"{dialog}_{gender}{t:03d}",
                            speaker,
                            emotion,
                            said,
                            _request(speaker, emotion, said.written),
                        )
                    )
                dialogs.append((session, dialog, turns))
    ctx.prefetch(turn[-1] for _, _, turns in dialogs for turn in turns)
    for session, dialog, turns in dialogs:
        _write_dialog(ctx, session, dialog, turns)


def _request(speaker: Speaker, emotion: str, written: str):
    pitch, speed, amplitude, intonation, _, _ = PROSODY[emotion]
    return speaker.request(
        written, pitch_shift=pitch, speed_scale=speed, amplitude=amplitude, intonation=intonation
    )


def _write_dialog(ctx: SynthContext, session: int, dialog: str, turns: list) -> None:
    evaluation = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"]
    transcription = []
    clock = float(ctx.rng_for("clock", dialog).uniform(2.0, 8.0))
    for utt, speaker, emotion, said, request in turns:
        relative = f"Session{session}/sentences/wav/{dialog}/{utt}.wav"
        rng = ctx.rng_for("recording", utt)
        loudness = PROSODY[emotion][4]  # recordings are not level-normalised: loud stays loud
        wav, info = dsp.record(
            rng,
            ctx.speak(request, RATE),
            RATE,
            snr_db=(25.0, 40.0),
            level_dbfs=(-28.0 + loudness, -22.0 + loudness),
        )
        ctx.write_audio(
            relative,
            wav,
            RATE,
            text=said.written,
            speaker=speaker.name,
            render=[request],
            emotion=emotion,
            session=session,
            **info,
        )
        start, end = clock, clock + len(wav) / RATE
        clock = end + float(rng.uniform(0.3, 1.5))
        valence, arousal, dominance = PROSODY[emotion][5]
        evaluation.append(
            f"[{start:.4f} - {end:.4f}]\t{utt}\t{emotion}\t"
            f"[{valence:.4f}, {arousal:.4f}, {dominance:.4f}]\n"
        )
        word = EVALUATOR_WORDS[emotion]
        evaluation += [f"C-E{e}:\t{word};\t()\n" for e in (1, 2, 4)]
        evaluation.append(
            f"A-E1:\tval {valence:.0f}; act {arousal:.0f}; dom  {dominance:.0f};\t()\n\n"
        )
        transcription.append(f"{utt} [{start:08.4f}-{end:08.4f}]: {said.written}\n")
    ctx.write_text(f"Session{session}/dialog/EmoEvaluation/{dialog}.txt", "".join(evaluation))
    ctx.write_text(f"Session{session}/dialog/transcriptions/{dialog}.txt", "".join(transcription))
