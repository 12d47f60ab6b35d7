"""Linear-chain conditional random field (CRF) for sequence labelling.

For emissions ``e[t, y]`` (a tagger's per-token scores) and learned transition scores, a tag path
``y_1 .. y_n`` scores

    s(y) = start[y_1] + sum_t e[t, y_t] + sum_{t>1} trans[y_{t-1}, y_t] + end[y_n]

and ``log p(y | e) = s(y) - log Z`` with ``log Z = logsumexp over all paths of s``. ``forward``
returns that log-likelihood (as pytorch-crf does: the training loss is ``-crf(emissions, tags)``);
``decode`` returns the Viterbi path ``argmax_y s(y)``.

Conventions (and where they differ from pytorch-crf 0.7.2):

* ``batch_first=True`` by default (pytorch-crf defaults to ``False``): emissions are
  ``(batch, seq_len, num_tags)``, tags and mask ``(batch, seq_len)``.
* A mask must be a left-aligned prefix: ``mask[:, 0]`` all on and no gap after a padded step
  (pytorch-crf only checks the first step). Tags under padded positions are ignored, so an ignore
  index such as ``-100`` may sit there.
* Constraints (``allowed_transitions`` for a tag scheme) replace forbidden transition, start and end
  scores by ``FORBIDDEN_SCORE = -1e4`` (not ``-inf``): ``exp(-1e4)`` underflows to exactly 0 in float32,
  so the partition equals the sum over allowed paths only, while a gold path that itself uses a
  forbidden transition still gets a finite (very low) log-likelihood and finite gradients. The
  forbidden entries are filled with ``masked_fill``, so their parameters receive zero gradient.

Speed: everything is vectorised over batch and tags; the only Python loops run over time (one
``logsumexp`` over a ``(batch, from, to)`` tensor per step in the forward algorithm, one ``max`` per
step in Viterbi, one ``gather`` per step in the backtrace). Emission + transition sums for all steps
are built in one broadcast before the loop, and variable lengths are handled after the loop by
gathering each sequence's state at its last step, so the loop carries no masking ops.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = ["CRF", "FORBIDDEN_SCORE", "SCHEMES", "TransitionConstraints", "allowed_transitions"]

FORBIDDEN_SCORE = -1e4
SCHEMES = ("IOB1", "IOB2", "IOBES", "BIOUL")
REDUCTIONS = ("none", "sum", "mean", "token_mean")

# Prefixes each scheme allows (besides the bare "O").
_SCHEME_PREFIXES = {
    "IOB1": {"B", "I"},
    "IOB2": {"B", "I"},
    "IOBES": {"B", "I", "E", "S"},
    "BIOUL": {"B", "I", "L", "U"},
}


class TransitionConstraints(NamedTuple):
    """Allowed ``(from, to)`` tag-index pairs, and the tags allowed first and last in a sequence."""

    transitions: list[tuple[int, int]]
    start: list[int]
    end: list[int]


def _parse_label(label: str, scheme: str) -> tuple[str, str]:
    if label == "O":
        return "O", ""
    prefix, sep, entity = label.partition("-")
    if not sep or not entity or prefix not in _SCHEME_PREFIXES[scheme]:
        allowed = ", ".join(f"{p}-<type>" for p in sorted(_SCHEME_PREFIXES[scheme]))
        raise ValueError(f"label {label!r} does not fit scheme {scheme}: expected 'O' or one of {allowed}")
    return prefix, entity


def _transition_ok(scheme: str, prev: tuple[str, str], nxt: tuple[str, str]) -> bool:
    (p, p_ent), (n, n_ent) = prev, nxt
    same = p_ent == n_ent
    if scheme == "IOB2":
        # I-X continues a B-X or I-X; O and B-Y may follow anything.
        return n in ("O", "B") or (n == "I" and p in ("B", "I") and same)
    if scheme == "IOB1":
        # I-X may start an entity anywhere; B-X only splits two adjacent X entities.
        return n in ("O", "I") or (n == "B" and p in ("B", "I") and same)
    # IOBES / BIOUL: map E->L, S->U and apply the BIOUL rules.
    p = {"E": "L", "S": "U"}.get(p, p)
    n = {"E": "L", "S": "U"}.get(n, n)
    if p in ("O", "L", "U"):  # outside any entity: must start a new one or stay outside
        return n in ("O", "B", "U")
    return n in ("I", "L") and same  # inside B-X/I-X: must continue or close X


def _start_ok(scheme: str, tag: tuple[str, str]) -> bool:
    t = tag[0]
    if scheme == "IOB2":
        return t in ("O", "B")
    if scheme == "IOB1":
        return t in ("O", "I")
    return t in ("O", "B", "S", "U")


def _end_ok(scheme: str, tag: tuple[str, str]) -> bool:
    if scheme in ("IOB1", "IOB2"):
        return True
    return tag[0] in ("O", "E", "S", "L", "U")


def allowed_transitions(labels: list[str], scheme: str) -> TransitionConstraints:
    """Which tag transitions a tagging ``scheme`` allows, as indices into ``labels``.

    ``labels[i]`` is tag ``i``'s name: ``"O"`` or ``"<prefix>-<type>"`` (``B-PER``, ``E-LOC`` ...).
    ``scheme`` is one of ``IOB1``, ``IOB2``, ``IOBES``, ``BIOUL``. Examples of what is forbidden:
    IOB2 ``O -> I-X``, ``B-X -> I-Y`` and starting with ``I-X``; IOBES ``B-X`` followed by anything but
    ``I-X``/``E-X``, and ending on ``B-X``/``I-X``.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: got {scheme!r}, expected one of {SCHEMES}")
    parsed = [_parse_label(label, scheme) for label in labels]
    pairs = [
        (i, j)
        for i, prev in enumerate(parsed)
        for j, nxt in enumerate(parsed)
        if _transition_ok(scheme, prev, nxt)
    ]
    start = [i for i, tag in enumerate(parsed) if _start_ok(scheme, tag)]
    end = [i for i, tag in enumerate(parsed) if _end_ok(scheme, tag)]
    return TransitionConstraints(pairs, start, end)


class CRF(nn.Module):
    """Linear-chain CRF over ``num_tags`` tags with learned start, end and transition scores.

    ``forward`` gives the log-likelihood of gold tags (negate it for a loss), ``decode`` the Viterbi
    paths as lists, ``decode_padded`` the same as a padded tensor with path scores, ``log_partition``
    the log normaliser. ``constraints`` (see ``allowed_transitions`` / ``CRF.from_scheme``) forbids
    transitions in both likelihood and decoding.
    """

    allowed_transitions = staticmethod(allowed_transitions)

    def __init__(
        self,
        num_tags: int,
        batch_first: bool = True,
        constraints: TransitionConstraints | None = None,
    ) -> None:
        if num_tags <= 0:
            raise ValueError(f"num_tags: got {num_tags}, expected a positive integer")
        super().__init__()
        self.num_tags = num_tags
        self.batch_first = batch_first
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        # (T, T), (T,), (T,) bool: True where forbidden; all False without constraints.
        self.register_buffer("_forbidden_transitions", torch.zeros(num_tags, num_tags, dtype=torch.bool))
        self.register_buffer("_forbidden_start", torch.zeros(num_tags, dtype=torch.bool))
        self.register_buffer("_forbidden_end", torch.zeros(num_tags, dtype=torch.bool))
        self.constrained = False
        if constraints is not None:
            self.set_constraints(constraints)
        self.reset_parameters()

    @classmethod
    def from_scheme(cls, labels: list[str], scheme: str, batch_first: bool = True) -> CRF:
        """A CRF over ``labels`` constrained to the transitions ``scheme`` allows."""
        return cls(len(labels), batch_first=batch_first, constraints=allowed_transitions(labels, scheme))

    def reset_parameters(self) -> None:
        """Uniform(-0.1, 0.1) start, end and transition scores (as pytorch-crf)."""
        nn.init.uniform_(self.start_transitions, -0.1, 0.1)
        nn.init.uniform_(self.end_transitions, -0.1, 0.1)
        nn.init.uniform_(self.transitions, -0.1, 0.1)

    def set_constraints(self, constraints: TransitionConstraints | None) -> None:
        """Forbid every transition / start / end tag not listed in ``constraints`` (None: allow all)."""
        n = self.num_tags
        if constraints is None:
            self._forbidden_transitions.zero_()
            self._forbidden_start.zero_()
            self._forbidden_end.zero_()
            self.constrained = False
            return
        indices = [i for pair in constraints.transitions for i in pair] + list(constraints.start) + list(constraints.end)
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise ValueError(f"constraints: got tag index {bad[0]}, expected indices in [0, {n})")
        allowed = torch.zeros(n, n, dtype=torch.bool)
        if constraints.transitions:
            frm, to = zip(*constraints.transitions)
            allowed[list(frm), list(to)] = True
        start = torch.zeros(n, dtype=torch.bool)
        start[list(constraints.start)] = True
        end = torch.zeros(n, dtype=torch.bool)
        end[list(constraints.end)] = True
        self._forbidden_transitions.copy_(~allowed)
        self._forbidden_start.copy_(~start)
        self._forbidden_end.copy_(~end)
        self.constrained = True

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, batch_first={self.batch_first}, constrained={self.constrained}"

    # ------------------------------------------------------------------ public API

    def forward(
        self,
        emissions: torch.Tensor,
        tags: torch.Tensor,
        mask: torch.Tensor | None = None,
        reduction: str = "sum",
    ) -> torch.Tensor:
        """Log-likelihood ``log p(tags | emissions)``, reduced by ``reduction``.

        ``none``: one value per sequence, shape ``(batch,)``; ``sum``: summed over the batch; ``mean``:
        averaged over sequences; ``token_mean``: summed, then divided by the number of unmasked tokens.
        """
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction: got {reduction!r}, expected one of {REDUCTIONS}")
        emissions, tags, mask = self._validate(emissions, tags=tags, mask=mask)
        # (L, B)
        tags = tags.masked_fill(~mask, 0)
        # (B,)
        llh = self._gold_score(emissions, tags, mask) - self._log_partition(emissions, mask)
        if reduction == "none":
            return llh
        if reduction == "sum":
            return llh.sum()
        if reduction == "mean":
            return llh.mean()
        return llh.sum() / mask.sum().to(llh.dtype)

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``log Z`` per sequence, shape ``(batch,)``: logsumexp of the scores of all (allowed) paths."""
        emissions, _, mask = self._validate(emissions, mask=mask)
        return self._log_partition(emissions, mask)

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> list[list[int]]:
        """Viterbi paths, one list of tag indices per sequence, each as long as its mask."""
        emissions, _, mask = self._validate(emissions, mask=mask)
        with torch.no_grad():
            # (L, B), (B,)
            paths, _ = self._viterbi(emissions, mask)
        lengths = mask.sum(0).tolist()
        return [row[:n] for row, n in zip(paths.t().tolist(), lengths)]

    def decode_padded(
        self, emissions: torch.Tensor, mask: torch.Tensor | None = None, pad_tag: int = -1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Viterbi paths as a long tensor shaped like ``mask`` (``pad_tag`` under padding) and their scores ``(batch,)``."""
        emissions, _, mask = self._validate(emissions, mask=mask)
        # (L, B), (B,)
        paths, scores = self._viterbi(emissions, mask)
        # (L, B)
        paths = paths.masked_fill(~mask, pad_tag)
        if self.batch_first:
            # (B, L)
            paths = paths.t().contiguous()
        return paths, scores

    # ------------------------------------------------------------------ validation

    def _validate(
        self,
        emissions: torch.Tensor,
        tags: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Check shapes, mask and tag range; return time-major ``(L, B, T)``, ``(L, B)``, bool ``(L, B)``."""
        layout = "(batch, seq_len" if self.batch_first else "(seq_len, batch"
        if emissions.dim() != 3:
            raise ValueError(
                f"emissions: got {emissions.dim()} dimensions {tuple(emissions.shape)}, "
                f"expected 3 {layout}, num_tags)"
            )
        if emissions.size(2) != self.num_tags:
            raise ValueError(f"emissions: got {emissions.size(2)} tags in the last dimension, expected {self.num_tags}")
        if emissions.size(0) == 0 or emissions.size(1) == 0:
            raise ValueError(f"emissions: got shape {tuple(emissions.shape)}, expected non-empty batch and sequence")
        if not emissions.is_floating_point():
            raise ValueError(f"emissions: got dtype {emissions.dtype}, expected a floating-point tensor")
        expected = tuple(emissions.shape[:2])
        if tags is not None and tuple(tags.shape) != expected:
            raise ValueError(f"tags: got shape {tuple(tags.shape)}, expected {expected} {layout})")
        if mask is not None and tuple(mask.shape) != expected:
            raise ValueError(f"mask: got shape {tuple(mask.shape)}, expected {expected} {layout})")

        if self.batch_first:
            # (B, L, T) -> (L, B, T); (B, L) -> (L, B)
            emissions = emissions.transpose(0, 1)
            tags = tags.t() if tags is not None else None
            mask = mask.t() if mask is not None else None
        if mask is None:
            # (L, B)
            mask = emissions.new_ones(emissions.shape[:2], dtype=torch.bool)
        else:
            mask = mask.bool()
            if not bool(mask[0].all()):
                off = (~mask[0]).nonzero().flatten().tolist()
                raise ValueError(f"mask: got the first timestep off for sequences {off}, expected all on")
            if mask.size(0) > 1 and bool((mask[1:] & ~mask[:-1]).any()):
                raise ValueError("mask: got a gap (an on step after an off step), expected left-aligned prefixes")
        if tags is not None:
            if tags.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
                raise ValueError(f"tags: got dtype {tags.dtype}, expected an integer tensor")
            tags = tags.long()
            # (L, B): out-of-range tags under the mask (no boolean indexing: it forces a nonzero + sync)
            bad = ((tags < 0) | (tags >= self.num_tags)) & mask
            if bool(bad.any()):
                on = tags[mask]
                raise ValueError(
                    f"tags: got values in [{int(on.min())}, {int(on.max())}] under the mask, "
                    f"expected values in [0, {self.num_tags})"
                )
        return emissions, tags, mask

    # ------------------------------------------------------------------ computations

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Start ``(T,)``, transition ``(T, T)`` and end ``(T,)`` scores with constraints applied."""
        if not self.constrained:
            return self.start_transitions, self.transitions, self.end_transitions
        return (
            self.start_transitions.masked_fill(self._forbidden_start, FORBIDDEN_SCORE),
            self.transitions.masked_fill(self._forbidden_transitions, FORBIDDEN_SCORE),
            self.end_transitions.masked_fill(self._forbidden_end, FORBIDDEN_SCORE),
        )

    def _gold_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Score ``s(tags)`` per sequence ``(B,)``; tags valid everywhere (padding already filled)."""
        assert emissions.dim() == 3 and tags.shape == emissions.shape[:2] == mask.shape
        start, trans, end = self._scores()
        maskf = mask.to(emissions.dtype)
        # (L, B): emission score of each gold tag, zero under padding
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2) * maskf
        # (B,)  (take / gather rather than advanced indexing, which costs ~10x more per call on CPU)
        score = start.take(tags[0]) + emit.sum(0)
        if tags.size(0) > 1:
            # (L-1, B): trans[y_{t-1}, y_t] via the flat index y_{t-1} * T + y_t, zero where step t is padding
            score = score + (trans.take(tags[:-1] * self.num_tags + tags[1:]) * maskf[1:]).sum(0)
        # (1, B): index of each sequence's last step
        last = mask.sum(0, keepdim=True) - 1
        # (1, B) -> (B,)
        last_tags = tags.gather(0, last).squeeze(0)
        return score + end.take(last_tags)

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Forward algorithm in log space: ``log Z`` per sequence ``(B,)``."""
        assert emissions.dim() == 3 and mask.shape == emissions.shape[:2]
        start, trans, end = self._scores()
        seq_len = emissions.size(0)
        # (L, B, 1, T) + (T, T) -> (L, B, T_prev, T_next): transition plus emission of the next tag
        steps = (emissions.unsqueeze(2) + trans).unbind(0)
        # (B, T)
        alpha = start + emissions[0]
        alphas = [alpha]
        for t in range(1, seq_len):
            # (B, T_prev, 1) + (B, T_prev, T_next) -> logsumexp over T_prev -> (B, T_next)
            alpha = torch.logsumexp(alpha.unsqueeze(2) + steps[t], dim=1)
            alphas.append(alpha)
        # (B, T): forward scores at each sequence's own last step
        final = self._at_last_step(alphas, mask)
        # (B,)
        return torch.logsumexp(final + end, dim=1)

    def _viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Best paths ``(L, B)`` (padding holds the last real tag) and their scores ``(B,)``."""
        assert emissions.dim() == 3 and mask.shape == emissions.shape[:2]
        start, trans, end = self._scores()
        seq_len, _, num_tags = emissions.shape
        # (L, B, T_prev, T_next)
        steps = (emissions.unsqueeze(2) + trans).unbind(0)
        # (B, T)
        delta = start + emissions[0]
        deltas = [delta]
        history = []
        for t in range(1, seq_len):
            # (B, T_prev, T_next) -> max over T_prev -> (B, T_next) scores and best previous tags
            delta, best_prev = (delta.unsqueeze(2) + steps[t]).max(dim=1)
            deltas.append(delta)
            history.append(best_prev)
        # (B, T) -> (B,), (B,)
        scores, last_tag = (self._at_last_step(deltas, mask) + end).max(dim=1)
        # (B, 1)
        cur = last_tag.unsqueeze(1)
        tags = [cur]
        if seq_len > 1:
            # (L-1, B, T): best previous tag for each tag at step t (index t-1); identity at padded steps
            # so the backtrace carries each sequence's last tag unchanged through its padding.
            identity = torch.arange(num_tags, device=emissions.device)
            back = torch.where(mask[1:].unsqueeze(2), torch.stack(history), identity).unbind(0)
            for t in range(seq_len - 2, -1, -1):
                # (B, T) gathered at (B, 1) -> (B, 1)
                cur = back[t].gather(1, cur)
                tags.append(cur)
            tags.reverse()
        # L x (B, 1) -> (B, L) -> (L, B)
        return torch.cat(tags, dim=1).t(), scores

    @staticmethod
    def _at_last_step(per_step: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Pick, per sequence, the ``(T,)`` row of ``per_step`` (L tensors of ``(B, T)``) at its last step."""
        assert len(per_step) == mask.size(0)
        if len(per_step) == 1 or bool(mask[-1].all()):  # no padding: every sequence ends at step L-1
            return per_step[-1]
        batch, num_tags = per_step[0].shape
        # (1, B, T): index of each sequence's last step, repeated over tags
        last = (mask.sum(0) - 1).view(1, batch, 1).expand(1, batch, num_tags)
        # (L, B, T) -> (1, B, T) -> (B, T)
        return torch.stack(per_step).gather(0, last).squeeze(0)
