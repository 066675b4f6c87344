"""Tiny random text checkpoints for every text architecture and task head, built offline.

The hub cannot be reached from CI, so each checkpoint is a transformers config (hidden size 32, 2 layers) saved
with random weights, plus a tokenizer *trained here* with the ``tokenizers`` library on :data:`CORPUS` and wrapped
in the architecture's own fast tokenizer class with its special tokens:

* WordPiece (``##`` continuation) for BERT, DistilBERT, ELECTRA, MPNet;
* byte-level BPE (``Ġ`` word starts, ``<s>``/``</s>``) for RoBERTa;
* SentencePiece-style Unigram (``▁`` word starts) for XLM-R, DeBERTa-v2 and ALBERT.

:func:`make` builds one checkpoint; :class:`Checkpoints` builds each (architecture, head) once per test session
and caches the folder. Heads (:data:`HEADS`) are named after the transformers pipeline task they serve.
"""

from __future__ import annotations

from pathlib import Path

#: Words the tokenizers are trained on (and the texts tests use): a few dozen, with shared sub-words.
CORPUS = (
    "the movie was good and the model serves text . triton serves models from a repository on disk . "
    "hello world , this is a bad movie ! who serves models ? what pads ? short texts pad in a batch . "
    "paris is the capital of france and berlin is in germany . john works at acme corporation in london . "
    "sport politics science music weather is sunny today . the cat sat on the mat with another cat . "
    "tokenizers split unknown words into pieces like tok ##en ##izer"
).split()

#: Head name -> (transformers auto class used by ``transformers.pipeline``, id2label or ``None``).
HEADS = {
    "text-classification": ("AutoModelForSequenceClassification", {0: "negative", 1: "neutral", 2: "positive"}),
    "multi-label": ("AutoModelForSequenceClassification", {0: "sport", 1: "politics", 2: "science", 3: "music"}),
    "nli": ("AutoModelForSequenceClassification", {0: "entailment", 1: "neutral", 2: "contradiction"}),
    "token-classification": ("AutoModelForTokenClassification",
                             {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-ORG", 4: "I-ORG", 5: "B-LOC", 6: "I-LOC"}),
    "question-answering": ("AutoModelForQuestionAnswering", None),
    "fill-mask": ("AutoModelForMaskedLM", None),
    "multiple-choice": ("AutoModelForMultipleChoice", None),
    "feature-extraction": ("AutoModel", None),
}

#: Architecture -> heads tested (BERT covers every task; the others classification and one more).
ARCH_HEADS = {
    "bert": list(HEADS),
    "distilbert": ["text-classification", "question-answering"],
    "roberta": ["text-classification", "fill-mask"],
    "xlm-roberta": ["text-classification", "token-classification"],
    "deberta-v2": ["text-classification", "question-answering"],
    "electra": ["text-classification", "token-classification"],
    "albert": ["text-classification", "fill-mask"],
    "mpnet": ["text-classification", "feature-extraction"],
}

MAX_LENGTH = 64
_SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}


def _wordpiece(special: list[str], unk: str):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token=unk, continuing_subword_prefix="##"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    alphabet = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list(".,!?'")
    tok.train_from_iterator([" ".join(CORPUS)] * 3, trainers.WordPieceTrainer(
        vocab_size=160, special_tokens=special, initial_alphabet=alphabet, min_frequency=1))
    return tok


def _unigram(special: list[str], unk: str):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    alphabet = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list(".,!?'")
    tok.train_from_iterator([" ".join(CORPUS)] * 3, trainers.UnigramTrainer(
        vocab_size=150, special_tokens=special, unk_token=unk, initial_alphabet=alphabet, shrinking_factor=0.9))
    return tok


def _bytelevel_bpe(special: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    tok.train_from_iterator([" ".join(CORPUS)] * 3, trainers.BpeTrainer(
        vocab_size=300, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def _template(tok, cls: str, sep: str, pair_sep: str, type1: int) -> None:
    """``cls A sep`` / ``cls A sep (pair_sep) B sep`` with token types 0 then ``type1``."""
    from tokenizers import processors

    ids = {t: tok.token_to_id(t) for t in {cls, sep}}
    second = f"{sep}:{type1} $B:{type1} {sep}:{type1}" if pair_sep == sep else f"$B:{type1} {sep}:{type1}"
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 {second}", special_tokens=list(ids.items()))


def tokenizer(arch: str):
    """The architecture's fast tokenizer (a ``PreTrainedTokenizerFast`` subclass), trained on :data:`CORPUS`."""
    import transformers as tf

    bert_special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    kw = {"model_max_length": MAX_LENGTH}
    if arch in ("bert", "distilbert", "electra"):
        tok = _wordpiece(bert_special, "[UNK]")
        _template(tok, "[CLS]", "[SEP]", "", 1)
        cls = {"bert": tf.BertTokenizerFast, "distilbert": tf.DistilBertTokenizerFast,
               "electra": tf.ElectraTokenizerFast}[arch]
        return cls(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                   cls_token="[CLS]", mask_token="[MASK]", **kw)
    if arch == "mpnet":
        tok = _wordpiece(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<unk>")
        _template(tok, "<s>", "</s>", "</s>", 0)
        return tf.MPNetTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                     cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", **kw)
    if arch == "roberta":
        tok = _bytelevel_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        return tf.RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                       cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                       add_prefix_space=False, **kw)
    if arch == "xlm-roberta":
        tok = _unigram(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<unk>")
        _template(tok, "<s>", "</s>", "</s>", 0)
        return tf.XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                          cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                          **kw)
    if arch == "deberta-v2":
        tok = _unigram(bert_special, "[UNK]")
        _template(tok, "[CLS]", "[SEP]", "", 1)
        return tf.DebertaV2TokenizerFast(tokenizer_object=tok, bos_token="[CLS]", eos_token="[SEP]",
                                         unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                                         mask_token="[MASK]", **kw)
    if arch == "albert":
        tok = _unigram(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], "<unk>")
        _template(tok, "[CLS]", "[SEP]", "", 1)
        return tf.AlbertTokenizerFast(tokenizer_object=tok, bos_token="[CLS]", eos_token="[SEP]", unk_token="<unk>",
                                      sep_token="[SEP]", pad_token="<pad>", cls_token="[CLS]", mask_token="[MASK]",
                                      **kw)
    raise ValueError(f"no tiny tokenizer for {arch!r}")


def config(arch: str, vocab_size: int, pad_id: int, labels: dict[int, str] | None, multi_label: bool = False):
    """A tiny transformers config for ``arch`` (2 layers, hidden 32, 64 positions)."""
    from transformers import AutoConfig

    kw = dict(vocab_size=vocab_size, pad_token_id=pad_id, initializer_range=0.3)
    if arch == "distilbert":
        kw.update(dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=MAX_LENGTH)
    elif arch in ("roberta", "xlm-roberta", "mpnet"):
        kw.update(_SMALL, max_position_embeddings=MAX_LENGTH + 2, type_vocab_size=1)
        if arch == "mpnet":
            kw.pop("type_vocab_size")
    elif arch == "albert":
        kw.update(_SMALL, embedding_size=16, max_position_embeddings=MAX_LENGTH)
    elif arch == "electra":
        kw.update(_SMALL, embedding_size=32, max_position_embeddings=MAX_LENGTH)
    elif arch == "deberta-v2":
        kw.update(_SMALL, max_position_embeddings=MAX_LENGTH, type_vocab_size=0, relative_attention=True,
                  position_buckets=16, max_relative_positions=-1, pos_att_type=["p2c", "c2p"])
    else:  # bert
        kw.update(_SMALL, max_position_embeddings=MAX_LENGTH)
    if labels:
        kw.update(id2label=dict(labels), label2id={v: k for k, v in labels.items()})
    if multi_label:
        kw["problem_type"] = "multi_label_classification"
    return AutoConfig.for_model(arch, **kw)


def make(path: Path, arch: str, head: str, seed: int = 0) -> Path:
    """Save a tiny random ``arch`` checkpoint with the ``head`` of :data:`HEADS` (and its tokenizer) in ``path``.

    Weights are seeded (``seed``); classification heads are scaled up so that different texts get different
    labels. Returns ``path``.
    """
    import torch
    import transformers

    auto_name, labels = HEADS[head]
    torch.manual_seed(seed)
    tok = tokenizer(arch)
    cfg = config(arch, len(tok), tok.pad_token_id, labels, multi_label=head == "multi-label")
    model = getattr(transformers, auto_name).from_config(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(k in name for k in ("classifier", "qa_outputs", "score")) and p.dim() == 2:
                p.mul_(1.5)
    model.eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


class Checkpoints:
    """Builds each ``(arch, head)`` checkpoint once under ``root`` (a session temp dir) and returns its folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[tuple[str, str], Path] = {}

    def __call__(self, arch: str, head: str) -> Path:
        key = (arch, head)
        if key not in self._built:
            self._built[key] = make(self.root / f"{arch}-{head}", arch, head)
        return self._built[key]


_SESSION: Checkpoints | None = None


def cached(arch: str, head: str) -> Path:
    """``(arch, head)`` checkpoint built once per process (test session) in a temp dir removed at exit."""
    global _SESSION
    if _SESSION is None:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="tiny-text-"))
        atexit.register(shutil.rmtree, root, True)
        _SESSION = Checkpoints(root)
    return _SESSION(arch, head)


def pairs() -> list[tuple[str, str]]:
    """Every ``(architecture, head)`` pair of the matrix."""
    return [(a, h) for a, heads in ARCH_HEADS.items() for h in heads]
