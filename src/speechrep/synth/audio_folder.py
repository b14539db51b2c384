"""A plain folder of unlabelled utterances (input for self-supervised pretraining).

Layout::

    utt_<nnnnn>.wav      16 kHz, 16-bit, 1-4 s each, many speakers and backgrounds

Nothing else describes the audio (the manifest beside it is for tests only).
"""

from __future__ import annotations

from speechrep.synth import dsp, text
from speechrep.synth.core import SynthContext
from speechrep.synth.voices import sample_speakers

RATE = 16000
SIZES = {"tiny": (4, 3), "small": (20, 10)}  # (speakers, utterances per speaker)


def build(ctx: SynthContext) -> None:
    """Unlabelled 1-4 s utterances in one folder (pretraining input)."""
    num_speakers, per_speaker = SIZES[ctx.size]
    speakers = sample_speakers(ctx.rng, [f"speaker{i:03d}" for i in range(num_speakers)])
    plan = []
    for speaker in speakers:
        for n in range(per_speaker):
            rng = ctx.rng_for("text", speaker.name, n)
            said = text.sentence(rng, 3, 8)
            plan.append(
                (
                    speaker,
                    said,
                    speaker.request(
                        said.written,
                        pitch_shift=int(rng.integers(-4, 5)),
                        speed_scale=rng.uniform(0.9, 1.15),
                    ),
                )
            )
    order = ctx.rng.permutation(len(plan))  # interleave speakers so names say nothing
    plan = [plan[int(i)] for i in order]
    ctx.prefetch(p[-1] for p in plan)
    for index, (speaker, said, request) in enumerate(plan, start=1):
        relative = f"utt_{index:05d}.wav"
        wav, info = dsp.record(
            ctx.rng_for("recording", relative),
            ctx.speak(request, RATE),
            RATE,
            lead=(0.05, 0.4),
            tail=(0.05, 0.4),
            snr_db=(10.0, 40.0),
        )
        ctx.write_audio(
            relative, wav, RATE, text=said.written, speaker=speaker.name, render=[request], **info
        )
