"""espeak-ng backend: Mandarin through the `cmn-latn-pinyin` voice.

Debian's espeak-ng 1.51 reads hanzi poorly with its plain `cmn` voice, but reads
tone-numbered pinyin well with `cmn-latn-pinyin`. So the normalized sentence is converted
with pypinyin (TONE3, neutral tone as 5) and Latin words are handed to an English voice in
the same SSML document. Each sentence runs one `espeak-ng` process that writes a 22.05 kHz
PCM16 WAV to stdout.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np

from asr_tts.audio import samples_to_float32
from asr_tts.tts import TtsEngine, TtsOptions
from asr_tts.wav import SampleEncoding, WavStreamParser
from server.errors import ConfigError, UnavailableError

logger = logging.getLogger(__name__)

ESPEAK_SAMPLE_RATE_HZ = 22_050
_INSTALL_HINT = "install it with: apt-get install espeak-ng"

# runs of Chinese characters, Latin words, and everything else
_TOKEN = re.compile(r"(?P<hanzi>[\u3400-\u9fff]+)|(?P<latin>[A-Za-z][A-Za-z']*)|(?P<other>.)")
# CJK punctuation mapped to what the pinyin voice pauses on
_PAUSES = {"，": ",", "、": ",", "：": ",", "；": ";", "。": ".", "！": "!", "？": "?"}
# 2 to 5 capitals (NFC, USB, GB) are spelled letter by letter; longer ones are read as words
_ACRONYM = re.compile(r"[A-Z]{2,5}")


@dataclass(frozen=True)
class EspeakConfig:
    """Settings of the espeak-ng engine.

    Attributes:
        executable: espeak-ng binary name or path.
        voice: the Mandarin voice, fed tone-numbered pinyin.
        latin_voice: the voice that reads Latin words and spells acronyms.
        words_per_minute: speaking rate at `TtsOptions.speaking_rate` 1.0 (espeak's -s).
        pitch: base pitch 0 to 99 (espeak's -p).
        timeout_s: time allowed for one sentence.
    """

    executable: str = "espeak-ng"
    voice: str = "cmn-latn-pinyin"
    latin_voice: str = "en-us"
    words_per_minute: int = 165
    pitch: int = 50
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 80 <= self.words_per_minute <= 450:
            raise ConfigError(f"espeak.words_per_minute={self.words_per_minute}: use 80 to 450")
        if not 0 <= self.pitch <= 99:
            raise ConfigError(f"espeak.pitch={self.pitch}: use 0 to 99")
        if self.timeout_s <= 0:
            raise ConfigError(f"espeak.timeout_s={self.timeout_s} must be positive")


def to_espeak_ssml(spoken_text: str, voice: str, latin_voice: str) -> str:
    """Convert a normalized sentence to SSML for espeak-ng.

    Hanzi become tone-numbered pinyin in `voice`; Latin words go to `latin_voice`, with
    acronyms spelled letter by letter. Each run is wrapped in its own <voice>, because
    after a closing </voice> espeak-ng 1.51 falls back to the plain `cmn` voice and would
    read "ni3" as "ni three".

    Returns:
        An SSML document (`<speak>…</speak>`).
    """
    from pypinyin import Style, lazy_pinyin

    runs: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(spoken_text):
        if match.lastgroup == "hanzi":
            syllables = lazy_pinyin(match.group(), style=Style.TONE3, neutral_tone_with_five=True)
            _append_run(runs, voice, " ".join(syllables))
        elif match.lastgroup == "latin":
            word = match.group()
            spelled = " ".join(word) if _ACRONYM.fullmatch(word) else word
            _append_run(runs, latin_voice, spelled)
        elif match.group() in _PAUSES and runs:
            _append_run(runs, runs[-1][0], _PAUSES[match.group()])

    body = "".join(f'<voice name="{name}">{escape(text)}</voice> ' for name, text in runs)
    return f"<speak>{body.strip()}</speak>"


def _append_run(runs: list[tuple[str, str]], voice: str, text: str) -> None:
    if runs and runs[-1][0] == voice:
        runs[-1] = (voice, f"{runs[-1][1]} {text}")
    else:
        runs.append((voice, text))


class EspeakEngine(TtsEngine):
    """espeak-ng as a subprocess per sentence; needs the Debian `espeak-ng` package."""

    name = "espeak"
    sample_rate_hz = ESPEAK_SAMPLE_RATE_HZ

    def __init__(self, config: EspeakConfig | None = None) -> None:
        self.config = config or EspeakConfig()
        executable = shutil.which(self.config.executable)
        if executable is None:
            raise ConfigError(f"espeak-ng ({self.config.executable}) not found; {_INSTALL_HINT}")
        self._executable = executable
        installed = self._installed_voices()
        for voice in (self.config.voice, self.config.latin_voice):
            if voice.lower() not in installed:
                raise ConfigError(
                    f"espeak-ng has no voice {voice!r}; the espeak-ng-data package provides "
                    f"cmn-latn-pinyin and en-us ({_INSTALL_HINT})"
                )

    def _installed_voices(self) -> set[str]:
        listing = subprocess.run(
            [self._executable, "--voices"],
            capture_output=True,
            text=True,
            timeout=self.config.timeout_s,
            check=True,
        ).stdout
        # columns: Pty, Language, Age/Gender, VoiceName, File, Other Languages "(en 2)"
        voices = set()
        for line in listing.splitlines()[1:]:
            columns = line.split()
            if len(columns) >= 5:
                voices.update((columns[1], columns[3], columns[4].rsplit("/", 1)[-1]))
                voices.update(re.findall(r"\((\S+) \d+\)", line))
        return {voice.lower() for voice in voices}

    def synthesize_spoken(self, spoken_text: str, options: TtsOptions) -> np.ndarray:
        """Synthesize one normalized sentence into float32 mono at 22.05 kHz.

        Raises:
            UnavailableError: espeak-ng failed or timed out.
        """
        voice = options.voice or self.config.voice
        ssml = to_espeak_ssml(spoken_text, voice, self.config.latin_voice)
        rate = round(self.config.words_per_minute * options.speaking_rate)
        command = [self._executable, "-m", "-v", voice, "-s", str(rate)]
        command += ["-p", str(self.config.pitch), "--stdout"]
        try:
            completed = subprocess.run(
                command,
                input=ssml.encode("utf-8"),
                capture_output=True,
                timeout=self.config.timeout_s,
                check=True,
            )
        except subprocess.TimeoutExpired as error:
            raise UnavailableError(
                f"espeak-ng took longer than {self.config.timeout_s} s for one sentence"
            ) from error
        except subprocess.CalledProcessError as error:
            message = error.stderr.decode("utf-8", "replace").strip()
            raise UnavailableError(
                f"espeak-ng exited with {error.returncode}: {message}"
            ) from error
        return _decode_espeak_wav(completed.stdout)


def _decode_espeak_wav(wav_bytes: bytes) -> np.ndarray:
    # espeak-ng writing to a pipe cannot seek back, so its data size is a placeholder
    parser = WavStreamParser()
    data = parser.feed(wav_bytes)
    parser.finish()
    if parser.format.sample_encoding is not SampleEncoding.PCM_S16LE or parser.format.channels != 1:
        raise UnavailableError(f"espeak-ng wrote an unexpected WAV format: {parser.format}")
    if parser.format.sample_rate_hz != ESPEAK_SAMPLE_RATE_HZ:
        raise UnavailableError(
            f"espeak-ng wrote {parser.format.sample_rate_hz} Hz, expected {ESPEAK_SAMPLE_RATE_HZ}"
        )
    usable = len(data) - len(data) % 2
    return samples_to_float32(data[:usable], SampleEncoding.PCM_S16LE)
