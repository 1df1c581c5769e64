"""ditkit-audio: flow-matching DiT text-to-speech (F5-style mel infilling with a sentence-level duration predictor).

Modules: :mod:`.normalize` and :mod:`.numerals` (the open-vocabulary text front-end: numbers, dates, abbreviations,
acronyms read out), :mod:`.text` (character / IPA tokenizers, sentence generator and splitter), :mod:`.audio` (wav I/O,
resampling, loudness, log-mel and Griffin-Lim), :mod:`.corpus` (checked LJSpeech / nested loaders, load
reports, caches), :mod:`.espeak` (espeak-ng with text on stdin), :mod:`.data` (espeak-ng corpus, bucketed batches,
DataModule), :mod:`.tokenizer` (log-mel tokens), :mod:`.model` (text encoder, duration predictor),
:mod:`.module` (Lightning module), :mod:`.inference` (synthesis), :mod:`.speak` (the ``sample`` command: text files,
voices, speed), :mod:`.asr` (CTC probe), :mod:`.metrics`,
:mod:`.vocoder` (Vocos-style neural vocoder), :mod:`.codec` (SQ-codec latent tokens).
"""

__version__ = "0.1.0"
