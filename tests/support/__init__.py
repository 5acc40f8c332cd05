"""What the tests share, importable as `tests.support` (pytest's pythonpath is the project root) by the
tests and the benchmarks alike: data.py (paths, real corpora, generated tones and files), checks.py,
nonspeech.py (generated non-speech sounds) and virtual_mic.py (a PulseAudio microphone without hardware)."""
