"""Tiny random vision, audio and multimodal checkpoints built offline (the hub cannot be reached from CI).

Each ``make_*`` writes a transformers config + random weights (``save_pretrained``) and the processor the
checkpoint needs (image processor, feature extractor, tokenizer) made locally, into ``path``; all are a few
hundred kB and build in well under a second. :data:`BUILDERS` maps a short name to ``(builder, tasks)``;
:func:`build_all` builds them once into a folder (tests call it from a session-scoped fixture).

Sizes are chosen so that every model runs in milliseconds on one CPU core: hidden size 32 (or less), one or two
layers, 32-pixel images, 16-mel-bin spectrograms.
"""

from __future__ import annotations

import json
from pathlib import Path

LABELS3 = {0: "cat", 1: "dog", 2: "bird"}
SEG_LABELS = {0: "background", 1: "road", 2: "sky", 3: "tree"}
AUDIO_LABELS = {0: "speech", 1: "music", 2: "noise"}
NER_LABELS = {0: "O", 1: "B-HEADER", 2: "I-HEADER", 3: "B-ANSWER"}


def _labels(labels: dict[int, str]) -> dict:
    return {"num_labels": len(labels), "id2label": dict(labels), "label2id": {v: k for k, v in labels.items()}}


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def make_vit_classifier(path: Path, seed: int = 0) -> Path:
    """ViT image classifier (3 labels), 32x32 images, patch 8 -> 17 tokens of hidden size 32."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    _seed(seed)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=37, initializer_range=0.2, **_labels(LABELS3))
    ViTForImageClassification(cfg).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def make_convnext_classifier(path: Path, seed: int = 0) -> Path:
    """ConvNeXt classifier: 2 stages (8, 16 channels), shortest edge 32 (resize 32/0.875 then centre crop)."""
    from transformers import ConvNextConfig, ConvNextForImageClassification, ConvNextImageProcessor

    _seed(seed)
    cfg = ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], initializer_range=0.2, **_labels(LABELS3))
    ConvNextForImageClassification(cfg).save_pretrained(path)
    ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(path)
    return path


def make_resnet_classifier(path: Path, seed: int = 0) -> Path:
    """ResNet classifier: basic blocks, 2 stages (8, 16 channels)."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    _seed(seed)
    cfg = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", **_labels(LABELS3))
    ResNetForImageClassification(cfg).save_pretrained(path)
    ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(path)
    return path


def make_dinov2_classifier(path: Path, seed: int = 0) -> Path:
    """DINOv2 classifier (3 labels); ``AutoModel`` on it gives the DINOv2 encoder (image feature extraction)."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2ForImageClassification

    _seed(seed)
    cfg = Dinov2Config(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       mlp_ratio=2, initializer_range=0.2, **_labels(LABELS3))
    Dinov2ForImageClassification(cfg).save_pretrained(path)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                      do_convert_rgb=True).save_pretrained(path)
    return path


def _resnet_backbone():
    from transformers import ResNetConfig

    return ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                        out_features=["stage2"])


def make_detr(path: Path, seed: int = 0) -> Path:
    """DETR object detector on transformers' own (random) ResNet backbone: no timm, nothing pretrained.

    5 queries, 3 labels (+ "no object"); images resized to shortest edge 32 / longest 64, aspect kept.
    """
    import torch
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor

    _seed(seed)
    cfg = DetrConfig(use_timm_backbone=False, backbone=None, use_pretrained_backbone=False,
                     backbone_config=_resnet_backbone(), d_model=32, encoder_layers=1, decoder_layers=1,
                     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=37,
                     num_queries=5, init_xavier_std=1.0, **_labels(LABELS3))
    model = DetrForObjectDetection(cfg)
    _jitter(model, 0.1)
    with torch.no_grad():  # queries far apart, so that each finds its own box
        model.model.query_position_embeddings.weight.normal_(0.0, 2.0)
    _sharpen(model.class_labels_classifier)
    model.save_pretrained(path)
    DetrImageProcessor(size={"shortest_edge": 32, "longest_edge": 64}).save_pretrained(path)
    return path


def make_yolos(path: Path, seed: int = 0) -> Path:
    """YOLOS object detector: patch 8, 5 detection tokens, 3 labels; position embeddings interpolated per size."""
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    _seed(seed)
    cfg = YolosConfig(image_size=[32, 48], patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=37, num_detection_tokens=5, initializer_range=0.2, **_labels(LABELS3))
    model = YolosForObjectDetection(cfg)
    _jitter(model, 0.1)
    _sharpen(model.class_labels_classifier)
    model.save_pretrained(path)
    YolosImageProcessor(size={"shortest_edge": 32, "longest_edge": 64}).save_pretrained(path)
    return path


def _jitter(model, std: float) -> None:
    """Add N(0, std) noise to every parameter: tokens and embeddings transformers initialises to zero (YOLOS
    detection tokens, DPT position embeddings) would otherwise make every query / pixel give the same answer."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * std)


def _sharpen(module) -> None:
    """Scale the last linear layer of a head so that random scores spread over (0, 1) instead of ~1/num_labels."""
    import torch

    last = [m for m in module.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(4.0)


def make_segformer(path: Path, seed: int = 0) -> Path:
    """SegFormer semantic segmentation, 2 encoder blocks, 4 labels, 32x32 input -> 8x8 logits."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    _seed(seed)
    cfg = SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                          patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2],
                          decoder_hidden_size=16, initializer_range=0.2, **_labels(SEG_LABELS))
    SegformerForSemanticSegmentation(cfg).save_pretrained(path)
    SegformerImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def make_dpt(path: Path, seed: int = 0) -> Path:
    """DPT depth estimation (ViT backbone, hidden 32, 4 layers read out), 32x32 input."""
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    _seed(seed)
    cfg = DPTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                    intermediate_size=37, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 8, 16, 16],
                    fusion_hidden_size=16, head_in_index=-1, reassemble_factors=[4, 2, 1, 0.5])
    model = DPTForDepthEstimation(cfg)
    _jitter(model, 0.1)
    with torch.no_grad():  # the head ends in a ReLU: positive biases keep the random depth map above zero
        for i in (0, 2, 4):
            model.head.head[i].bias.fill_(0.5)
    model.save_pretrained(path)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(path)
    return path


def make_wav2vec2_classifier(path: Path, seed: int = 0) -> Path:
    """wav2vec2 audio classifier (3 labels) on 16 kHz audio; feature extractor normalises (zero mean, unit var)."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    _seed(seed)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                         conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, classifier_proj_size=16, do_stable_layer_norm=False,
                         feat_extract_norm="group", initializer_range=0.2, **_labels(AUDIO_LABELS))
    model = Wav2Vec2ForSequenceClassification(cfg)
    _sharpen(model.classifier)
    model.save_pretrained(path)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(path)
    return path


def make_hubert_classifier(path: Path, seed: int = 0) -> Path:
    """HuBERT audio classifier (3 labels) on 16 kHz audio: wav2vec2's feature extractor, no attention mask."""
    from transformers import HubertConfig, HubertForSequenceClassification, Wav2Vec2FeatureExtractor

    _seed(seed)
    cfg = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                       conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                       num_conv_pos_embedding_groups=2, classifier_proj_size=16, do_stable_layer_norm=False,
                       feat_extract_norm="group", initializer_range=0.2, **_labels(AUDIO_LABELS))
    model = HubertForSequenceClassification(cfg)
    _sharpen(model.classifier)
    model.save_pretrained(path)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(path)
    return path


def make_ast_classifier(path: Path, seed: int = 0) -> Path:
    """Audio Spectrogram Transformer classifier: 16 mel bins x 100 frames (1 s at 16 kHz), 3 labels."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    _seed(seed)
    cfg = ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, patch_size=16,
                    frequency_stride=10, time_stride=10, max_length=100, num_mel_bins=16, initializer_range=0.2,
                    **_labels(AUDIO_LABELS))
    model = ASTForAudioClassification(cfg)
    _sharpen(model.classifier)
    model.save_pretrained(path)
    ASTFeatureExtractor(num_mel_bins=16, max_length=100, sampling_rate=16000).save_pretrained(path)
    return path


def _byte_bpe_vocab() -> dict[str, int]:
    """A byte-level BPE vocabulary with no merges (every character its own token): CLIP's specials + 512 pieces."""
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    pieces = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {p: i for i, p in enumerate(pieces)}


def make_clip(path: Path, seed: int = 0) -> Path:
    """CLIP (text + vision towers, projection 16), 32x32 images, a character-level BPE tokenizer (64 tokens max)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    _seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    vocab = _byte_bpe_vocab()
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=64)
    text = {"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": 64, "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"]}
    vision = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    CLIPModel(cfg).save_pretrained(path)
    image_proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_proc, tokenizer=tok).save_pretrained(path)
    return path


def make_siglip(path: Path, seed: int = 0) -> Path:
    """SigLIP (text + vision towers, hidden 32), 32x32 images, a hand-made word-level tokenizer.

    As SigLIP's own (sentencepiece) tokenizer, the tokenizer appends ``</s>``, pads with ``</s>`` and returns
    ``input_ids`` only (no attention mask: the text tower pools the LAST position, which is why the
    zero-shot pipeline pads to ``max_length`` 64); ``sentencepiece`` is not installed here, so it is a
    ``tokenizers`` WordPiece model saved as ``PreTrainedTokenizerFast``.
    """
    import math

    import torch
    from tiny_models import _vocab
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipImageProcessor, SiglipModel

    _seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    words = ["<pad>", "</s>", "<unk>"] + [w for w in _vocab() if not w.startswith("[")]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}  # words, letters and ##letters: no <unk> in tests
    core = Tokenizer(models.WordPiece(vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="</s>", eos_token="</s>", unk_token="<unk>",
                                  model_max_length=64, model_input_names=["input_ids"])
    tok.save_pretrained(path)
    text = {"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": 64, "pad_token_id": vocab["</s>"],
            "eos_token_id": vocab["</s>"]}
    vision = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}
    model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
    _jitter(model, 0.2)  # otherwise every label's text embedding is nearly the same
    with torch.no_grad():  # and a logit scale that spreads the sigmoid scores over (0, 1)
        model.logit_scale.fill_(math.log(20.0))
        model.logit_bias.fill_(0.0)
    model.save_pretrained(path)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def make_maskformer(path: Path, seed: int = 0) -> Path:
    """MaskFormer (universal segmentation) on transformers' own random ResNet backbone: 5 queries, 4 labels
    (+ "no object"), a 1-layer DETR decoder, FPN and mask features 32 (GroupNorm(32, ...)); images resized to shortest edge 32 / longest 64, multiple of 32."""
    import torch
    from transformers import MaskFormerConfig, MaskFormerForInstanceSegmentation, MaskFormerImageProcessor, ResNetConfig

    _seed(seed)
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                            out_features=["stage1", "stage2"])
    decoder = {"model_type": "detr", "d_model": 32, "encoder_layers": 1, "decoder_layers": 1,
               "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 37,
               "decoder_ffn_dim": 37, "num_queries": 5}
    cfg = MaskFormerConfig(backbone_config=backbone.to_dict(), decoder_config=decoder, fpn_feature_size=32,
                           mask_feature_size=32, init_std=0.2, **_labels(SEG_LABELS))
    model = MaskFormerForInstanceSegmentation(cfg)
    _jitter(model, 0.1)
    with torch.no_grad():  # queries far apart and an unbiased class head: each query predicts its own label
        model.model.transformer_module.queries_embedder.weight.normal_(0.0, 2.0)
        model.class_predictor.weight.normal_(0.0, 0.5)
        model.class_predictor.bias.zero_()
    model.save_pretrained(path)
    MaskFormerImageProcessor(size={"shortest_edge": 32, "longest_edge": 64}, size_divisor=32,
                             do_reduce_labels=False).save_pretrained(path)
    return path


def make_layoutlm_tagger(path: Path, seed: int = 0) -> Path:
    """LayoutLM token classifier (4 labels) with a WordPiece tokenizer; boxes on the 0-1000 scale."""
    from tiny_models import _vocab
    from transformers import BertTokenizerFast, LayoutLMConfig, LayoutLMForTokenClassification

    _seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    cfg = LayoutLMConfig(vocab_size=len(_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=37, max_position_embeddings=64, max_2d_position_embeddings=1024,
                         initializer_range=0.3, **_labels(NER_LABELS))
    LayoutLMForTokenClassification(cfg).save_pretrained(path)
    BertTokenizerFast(str(path / "vocab.txt"), model_max_length=64).save_pretrained(path)
    return path


#: short name -> (builder, tasks the matrix runs for it)
BUILDERS = {
    "vit": (make_vit_classifier, ("image-classification", "feature-extraction")),
    "convnext": (make_convnext_classifier, ("image-classification",)),
    "resnet": (make_resnet_classifier, ("image-classification",)),
    "dinov2": (make_dinov2_classifier, ("image-classification", "feature-extraction")),
    "detr": (make_detr, ("object-detection",)),
    "yolos": (make_yolos, ("object-detection",)),
    "segformer": (make_segformer, ("semantic-segmentation",)),
    "dpt": (make_dpt, ("depth-estimation",)),
    "wav2vec2": (make_wav2vec2_classifier, ("audio-classification",)),
    "ast": (make_ast_classifier, ("audio-classification",)),
    "hubert": (make_hubert_classifier, ("audio-classification",)),
    "clip": (make_clip, ("zero-shot-image-classification", "feature-extraction")),
    "siglip": (make_siglip, ("zero-shot-image-classification",)),
    "maskformer": (make_maskformer, ("image-segmentation",)),
    "layoutlm": (make_layoutlm_tagger, ("token-classification",)),
}


def build_all(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build the checkpoints ``names`` (default: all of :data:`BUILDERS`) under ``root``; ``{name: folder}``."""
    return {n: BUILDERS[n][0](Path(root) / f"tiny-{n}") for n in (names or list(BUILDERS))}
