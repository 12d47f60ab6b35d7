"""The Siamese bi-encoder (Bromley et al. 1993; Reimers & Gurevych 2019, Sentence-BERT) as a ``transformers``
model: one encoder shared by every text of a pair or triplet, its token states pooled into one vector
(mask-aware mean / CLS / max), optionally L2-normalised.

``SiameseModel(input_ids, attention_mask, token_type_ids)`` returns ``SiameseOutput(embeddings,
last_hidden_state)`` for one batch of texts; a loss (:mod:`harness.losses`) calls it once per text column and
compares the embeddings. :meth:`SiameseModel.similarity` / :meth:`SiameseModel.similarity_matrix` apply the
configured similarity. Importing this module registers ``model_type = "harness_siamese"`` with ``AutoConfig``
and ``AutoModel``, so a saved model comes back with ``AutoModel.from_pretrained``. The sentence-transformers
folder layout (both ways) is :mod:`harness.models.siamese.sentence_transformers_io`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.utils import ModelOutput

from harness.models.siamese.configuration_siamese import SiameseConfig
from harness.registry import register_auto


@dataclass
class SiameseOutput(ModelOutput):
    """``embeddings``: ``(batch, hidden)`` pooled (and, with ``normalize``, unit-length) sentence vectors;
    ``last_hidden_state``: the encoder's ``(batch, length, hidden)`` token states."""

    embeddings: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Token states ``(B, L, H)`` → one vector per row ``(B, H)``, ignoring padding (``attention_mask == 0``).

    ``mean``: Σ_t m_t h_t / max(Σ_t m_t, 1e-9) (sentence-transformers' clamp); ``cls``: h_0 (right padding:
    the first token is real); ``max``: max_t over the real tokens (padding set to -1e9 first, as
    sentence-transformers does, so a row's maximum is always one of its own tokens')."""
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    # (B, L, 1) in the states' dtype
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return hidden.masked_fill(mask == 0, -1e9).max(1).values
    raise ValueError(f"pooling: expected one of mean, cls, max, got {mode!r}")


class SiamesePreTrainedModel(PreTrainedModel):
    config_class = SiameseConfig
    base_model_prefix = "siamese"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing of its own: the encoder (a ``PreTrainedModel``) initialises its weights itself."""


class SiameseModel(SiamesePreTrainedModel):
    """A shared encoder + pooling (+ normalisation)."""

    def __init__(self, config: SiameseConfig):
        super().__init__(config)
        if config.encoder is None:
            raise ValueError("SiameseConfig.encoder: the encoder's config is required")
        self.encoder = AutoModel.from_config(config.encoder)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, **kwargs):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if inputs_embeds is not None:
            inputs = {"inputs_embeds": inputs_embeds, "attention_mask": attention_mask}
        outputs = self.encoder(**inputs, **kwargs)
        hidden = outputs.last_hidden_state if hasattr(outputs, "last_hidden_state") else outputs[0]
        # (B, L, H) -> (B, H)
        embeddings = pool(hidden, attention_mask, self.config.pooling)
        if self.config.normalize:
            embeddings = F.normalize(embeddings, p=2, dim=-1)
        return SiameseOutput(embeddings=embeddings, last_hidden_state=hidden)

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Row-wise similarity of ``(N, H)`` and ``(N, H)`` → ``(N,)`` with ``config.similarity``."""
        return pairwise_similarity(a, b, self.config.similarity)

    def similarity_matrix(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Every row of ``a`` ``(N, H)`` against every row of ``b`` ``(M, H)`` → ``(N, M)``."""
        return similarity_matrix(a, b, self.config.similarity)

    @torch.no_grad()
    def encode(self, texts: list[str], tokenizer, batch_size: int = 64, max_length: int | None = None) -> torch.Tensor:
        """Embeddings of ``texts`` ``(N, H)`` (float32, on the CPU), in order; truncated to ``max_length``, else
        ``config.max_seq_length``, else the tokenizer's limit."""
        was_training = self.training
        self.eval()
        limit = max_length or self.config.max_seq_length or tokenizer.model_max_length
        out = []
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=limit,
                            return_tensors="pt").to(self.device)
            out.append(self(**enc).embeddings.float().cpu())
        self.train(was_training)
        return torch.cat(out) if out else torch.zeros((0, self.config.hidden_size))


def pairwise_similarity(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "cosine":
        return F.cosine_similarity(a, b, dim=-1)
    if kind == "dot":
        return (a * b).sum(-1)
    if kind == "euclidean":
        return -torch.linalg.vector_norm(a - b, dim=-1)
    raise ValueError(f"similarity: expected cosine, euclidean or dot, got {kind!r}")


def similarity_matrix(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "cosine":
        return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    if kind == "dot":
        return a @ b.T
    if kind == "euclidean":
        return -torch.cdist(a, b)
    raise ValueError(f"similarity: expected cosine, euclidean or dot, got {kind!r}")


register_auto(SiameseConfig, AutoModel=SiameseModel)
