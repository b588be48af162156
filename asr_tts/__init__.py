"""Audio codecs and resampling, voice activity detection, speech recognition and synthesis."""
