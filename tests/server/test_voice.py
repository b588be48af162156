"""Voice over a real server: Converse with audio in and out, barge-in, Speech service."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from asr_tts.asr import character_error_rate
from asr_tts.audio import InputAudioFormat, decode_audio, float_to_pcm16
from asr_tts.g711 import mulaw_encode
from asr_tts.wav import SampleEncoding, build_wav_header
from kefu_api.v1 import assistant_pb2, assistant_pb2_grpc, common_pb2, speech_pb2, speech_pb2_grpc
from tests.asr_tts.conftest import load_mandarin_recording
from tests.conftest import ingest_samples

PCM16_16K = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=16000)
MULAW = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_MULAW, sample_rate_hz=8000)
WAV = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_WAV)
# CER of Whisper base on these clear recordings is about 0; this margin allows for
# telephony degradation.
CER_MARGIN = 0.25


def pcm16_bytes(samples: np.ndarray) -> bytes:
    return float_to_pcm16(samples).tobytes()


def silence_16k(ms: int) -> bytes:
    return bytes(32 * ms)


def wav_with_silence(recording, silence_ms: int) -> bytes:
    """Return the recording as a 16 kHz WAV file with silence appended inside its data."""
    samples = decode_audio(recording.wav_path.read_bytes(), InputAudioFormat("wav"))
    data = pcm16_bytes(samples) + silence_16k(silence_ms)
    return build_wav_header(SampleEncoding.PCM_S16LE, 1, 16000, len(data)) + data


@pytest.fixture(scope="module")
def recording():
    return load_mandarin_recording("paddlespeech-zh")


@pytest.fixture(scope="module")
def other_recording():
    return load_mandarin_recording("funasr-example")


@pytest.fixture(scope="module")
def stub(running_server) -> Iterator[assistant_pb2_grpc.AssistantStub]:
    with grpc.insecure_channel(running_server.address) as channel:
        yield assistant_pb2_grpc.AssistantStub(channel)


class VoiceClient:
    """One Converse stream whose requests the test pushes from its own thread."""

    def __init__(self, stub, config: assistant_pb2.SessionConfig) -> None:
        self.requests: queue.Queue = queue.Queue()
        self.requests.put(assistant_pb2.ConverseRequest(config=config))
        self.responses = stub.Converse(iter(self.requests.get, None), timeout=120)
        self.events: list = []
        self._reader = threading.Thread(target=self._read)
        self._reader.start()

    def _read(self) -> None:
        try:
            for response in self.responses:
                self.events.append(response)
        except grpc.RpcError as exc:
            self.events.append(exc)

    def audio(self, data: bytes, chunk_bytes: int = 3200, realtime_bytes_per_s: int = 0) -> None:
        for start in range(0, len(data), chunk_bytes):
            self.requests.put(
                assistant_pb2.ConverseRequest(
                    audio=assistant_pb2.AudioChunk(data=data[start : start + chunk_bytes])
                )
            )
            if realtime_bytes_per_s:
                time.sleep(chunk_bytes / realtime_bytes_per_s)

    def text(self, text: str) -> None:
        self.requests.put(assistant_pb2.ConverseRequest(text=assistant_pb2.TextInput(text=text)))

    def finish(self, timeout_s: float = 90) -> list:
        self.requests.put(None)
        self._reader.join(timeout_s)
        assert not self._reader.is_alive(), "the stream did not end"
        return self.events

    def wait_for(self, kind: str, timeout_s: float = 60):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in list(self.events):
                if not isinstance(event, Exception) and event.WhichOneof("event") == kind:
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no {kind} event within {timeout_s} s: {self.kinds()}")

    def kinds(self) -> list[str]:
        return [e.WhichOneof("event") if not isinstance(e, Exception) else "rpc_error"
                for e in self.events]  # fmt: skip


def of_kind(events, kind: str) -> list:
    return [getattr(e, kind) for e in events if e.WhichOneof("event") == kind]


def voice_config(**kwargs) -> assistant_pb2.SessionConfig:
    values = {"tenant": "shop", "input_audio": WAV}
    values.update(kwargs)
    return assistant_pb2.SessionConfig(**values)


def test_spoken_question_answered_with_audio(stub, recording) -> None:
    config = voice_config(
        output_audio=PCM16_16K, outputs=assistant_pb2.OutputOptions(audio=True, text_deltas=True)
    )
    client = VoiceClient(stub, config)
    client.audio(wav_with_silence(recording, 1500))
    client.wait_for("turn_end")
    events = client.finish()

    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[:2] == ["session_started", "speech"]
    transcripts = of_kind(events, "transcript")
    final = [t for t in transcripts if t.is_final][0]
    assert character_error_rate(final.text, recording.transcript) <= CER_MARGIN
    assert final.end_ms > final.start_ms

    answer = of_kind(events, "answer")[0]
    assert answer.transcript == final.text
    audio = of_kind(events, "audio")
    assert audio, kinds
    assert all(a.answer_id == answer.answer_id for a in audio)
    assert sum(len(a.data) for a in audio) % 2 == 0
    assert kinds.index("transcript") < kinds.index("answer_delta") < kinds.index("audio")

    turn_end = of_kind(events, "turn_end")[0]
    assert turn_end.reason == "answered"
    for stage in ("endpointing", "asr_final", "retrieval", "tts_first_chunk", "to_first_audio"):
        assert stage in turn_end.latency_ms, stage


def test_mulaw_phone_call(stub, recording) -> None:
    samples_8k = decode_audio(recording.wav_path.read_bytes(), InputAudioFormat("wav"), 8000)
    call_audio = mulaw_encode(float_to_pcm16(samples_8k)) + bytes([0xFF]) * 8000
    config = voice_config(
        input_audio=MULAW, output_audio=MULAW, outputs=assistant_pb2.OutputOptions(audio=True)
    )
    client = VoiceClient(stub, config)
    client.audio(call_audio, chunk_bytes=160)
    client.wait_for("turn_end")
    events = client.finish()

    final = [t for t in of_kind(events, "transcript") if t.is_final][0]
    assert character_error_rate(final.text, recording.transcript) <= CER_MARGIN
    audio = of_kind(events, "audio")
    assert audio
    assert all(len(a.data) % 160 == 0 for a in audio)


def test_odd_chunks_and_empty_chunks(stub, recording) -> None:
    data = wav_with_silence(recording, 1500)
    client = VoiceClient(stub, voice_config())
    sizes = [0, 1, 7, 333, 0, 1001]
    position, n = 0, 0
    while position < len(data):
        size = sizes[n % len(sizes)]
        client.audio(data[position : position + size] if size else b"", chunk_bytes=max(size, 1))
        position += size
        n += 1
    client.wait_for("turn_end")
    events = client.finish()
    final = [t for t in of_kind(events, "transcript") if t.is_final][0]
    assert character_error_rate(final.text, recording.transcript) <= CER_MARGIN


def test_last_words_decoded_on_half_close(stub, recording) -> None:
    """No trailing silence: the end of the stream ends the utterance."""
    client = VoiceClient(stub, voice_config())
    client.audio(recording.wav_path.read_bytes())
    events = client.finish()
    final = [t for t in of_kind(events, "transcript") if t.is_final][0]
    assert character_error_rate(final.text, recording.transcript) <= CER_MARGIN
    assert final.text.endswith("健康")


def test_end_of_utterance_control(stub, recording) -> None:
    client = VoiceClient(stub, voice_config())
    client.audio(recording.wav_path.read_bytes())
    client.requests.put(
        assistant_pb2.ConverseRequest(
            control=assistant_pb2.Control(kind=assistant_pb2.Control.KIND_END_OF_UTTERANCE)
        )
    )
    client.wait_for("turn_end")
    events = client.finish()
    assert [t for t in of_kind(events, "transcript") if t.is_final]


def test_silence_gives_no_turn(stub) -> None:
    client = VoiceClient(stub, voice_config(input_audio=PCM16_16K))
    client.audio(silence_16k(10_000), chunk_bytes=32_000)
    rng = np.random.default_rng(0)
    client.audio(pcm16_bytes(rng.normal(0, 0.002, 16000 * 3).astype(np.float32)))
    client.text("运费怎么算")
    events = client.finish()
    assert of_kind(events, "transcript") == [] or all(
        t.text == "" for t in of_kind(events, "transcript")
    )
    answers = of_kind(events, "answer")
    assert len(answers) == 1
    assert "99元包邮" in answers[0].text


def test_streams_do_not_share_audio(stub, recording, other_recording) -> None:
    first = VoiceClient(stub, voice_config())
    second = VoiceClient(stub, voice_config())
    a, b = recording.wav_path.read_bytes(), other_recording.wav_path.read_bytes()
    for start in range(0, max(len(a), len(b)), 4000):
        first.audio(a[start : start + 4000], chunk_bytes=4000)
        second.audio(b[start : start + 4000], chunk_bytes=4000)
    finals = []
    for client, reference in ((first, recording), (second, other_recording)):
        events = client.finish()
        final = [t for t in of_kind(events, "transcript") if t.is_final][0]
        finals.append(final.text)
        assert character_error_rate(final.text, reference.transcript) <= CER_MARGIN
    assert finals[0] != finals[1]


def test_barge_in_stops_audio(stub, recording) -> None:
    config = voice_config(
        input_audio=PCM16_16K,
        output_audio=PCM16_16K,
        outputs=assistant_pb2.OutputOptions(audio=True),
    )
    client = VoiceClient(stub, config)
    client.text("耳机拆封了还能无理由退货吗")
    client.wait_for("audio")
    speech = decode_audio(recording.wav_path.read_bytes(), InputAudioFormat("wav"))
    client.audio(pcm16_bytes(speech) + silence_16k(1500), realtime_bytes_per_s=4 * 32000)
    client.wait_for("transcript", timeout_s=90)
    events = client.finish()

    kinds = [e.WhichOneof("event") for e in events]
    assert "audio_flush" in kinds
    flush_at = kinds.index("audio_flush")
    first_turn_end = of_kind(events, "turn_end")[0]
    assert first_turn_end.reason in ("barge_in", "answered")
    # No audio of the interrupted answer follows the flush.
    first_answer_audio = [e for e in events[flush_at:] if e.WhichOneof("event") == "audio"]
    assert all(e.turn != 1 for e in first_answer_audio)
    finals = [t for t in of_kind(events, "transcript") if t.is_final]
    assert character_error_rate(finals[0].text, recording.transcript) <= CER_MARGIN


@pytest.mark.parametrize(
    ("audio_format", "field"),
    [
        (common_pb2.AudioFormat(), "config.input_audio.encoding"),
        (common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=12345),
         "config.input_audio.sample_rate_hz"),
        (common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_MULAW, sample_rate_hz=16000),
         "config.input_audio.sample_rate_hz"),
    ],
)  # fmt: skip
def test_bad_input_format_rejected(stub, audio_format, field) -> None:
    requests = iter([assistant_pb2.ConverseRequest(config=voice_config(input_audio=audio_format))])
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Converse(requests, timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in info.value.details()


def test_audio_output_needs_format(stub) -> None:
    config = assistant_pb2.SessionConfig(
        tenant="shop", outputs=assistant_pb2.OutputOptions(audio=True)
    )
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Converse(iter([assistant_pb2.ConverseRequest(config=config)]), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.output_audio" in info.value.details()


def test_audio_before_config(stub) -> None:
    requests = iter([assistant_pb2.ConverseRequest(audio=assistant_pb2.AudioChunk(data=b"\0\0"))])
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Converse(requests, timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_wav_header_contradicting_config(stub, recording) -> None:
    config = voice_config(
        input_audio=common_pb2.AudioFormat(
            encoding=common_pb2.AUDIO_ENCODING_WAV, sample_rate_hz=8000
        )
    )
    client = VoiceClient(stub, config)
    client.audio(recording.wav_path.read_bytes())
    client.text("运费怎么算")
    events = client.finish()
    errors = of_kind(events, "error")
    assert errors[0].code == "INVALID_ARGUMENT"
    assert errors[0].field.startswith("config.input_audio")
    assert "99元包邮" in of_kind(events, "answer")[0].text


def test_truncated_wav(stub) -> None:
    client = VoiceClient(stub, voice_config())
    client.audio(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    events = client.finish()
    errors = of_kind(events, "error")
    assert errors and errors[0].code == "INVALID_ARGUMENT"


def test_voice_capacity(settings_factory, tracer_provider, recording) -> None:
    from server.app import ServerThread

    server = ServerThread(settings_factory(max_voice_streams=1), tracer_provider)
    try:
        ingest_samples(server.address, "shop")
        with grpc.insecure_channel(server.address) as channel:
            stub = assistant_pb2_grpc.AssistantStub(channel)
            first = VoiceClient(stub, voice_config())
            first.wait_for("session_started")
            second = VoiceClient(stub, voice_config())
            events = second.finish()
            assert isinstance(events[-1], grpc.RpcError)
            assert events[-1].code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # A rejection must not free a place for the next voice stream.
            third = VoiceClient(stub, voice_config()).finish()
            assert isinstance(third[-1], grpc.RpcError)
            assert third[-1].code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            text_only = VoiceClient(stub, assistant_pb2.SessionConfig(tenant="shop"))
            text_only.text("运费怎么算")
            assert of_kind(text_only.finish(), "answer")
            first.finish()
    finally:
        server.stop()


# Speech service


def test_recognize(running_server, recording) -> None:
    with grpc.insecure_channel(running_server.address) as channel:
        stub = speech_pb2_grpc.SpeechStub(channel)
        data = recording.wav_path.read_bytes()
        requests = [speech_pb2.RecognizeRequest(config=speech_pb2.RecognizeConfig(audio=WAV))]
        requests += [
            speech_pb2.RecognizeRequest(audio=assistant_pb2.AudioChunk(data=data[i : i + 3201]))
            for i in range(0, len(data), 3201)
        ]
        responses = list(stub.Recognize(iter(requests), timeout=60))
    finals = [r.transcript for r in responses if r.HasField("transcript") and r.transcript.is_final]
    assert len(finals) == 1
    assert character_error_rate(finals[0].text, recording.transcript) <= CER_MARGIN
    assert any(r.HasField("speech") for r in responses)


def test_synthesize_mulaw_frames(running_server) -> None:
    with grpc.insecure_channel(running_server.address) as channel:
        stub = speech_pb2_grpc.SpeechStub(channel)
        request = speech_pb2.SynthesizeRequest(
            text="您好，运费满99元包邮。退款一般三天到账。", audio=MULAW
        )
        responses = list(stub.Synthesize(request, timeout=30))
    assert len(responses) >= 2
    assert all(len(r.data) % 160 == 0 for r in responses)
    assert responses[0].offset_ms == 0
    assert responses[-1].offset_ms > 0
    assert "九十九" in "".join(r.normalized_text for r in responses)


def test_synthesize_rejects_empty_text(running_server) -> None:
    with grpc.insecure_channel(running_server.address) as channel:
        stub = speech_pb2_grpc.SpeechStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Synthesize(speech_pb2.SynthesizeRequest(text="  ", audio=MULAW), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "text" in info.value.details()
