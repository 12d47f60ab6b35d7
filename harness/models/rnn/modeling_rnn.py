r"""The recurrent family as ``transformers`` models: a bare encoder and three heads.

Cells (``config.cell``); :math:`x_t` is a layer's input at step :math:`t`, :math:`h_{t-1}` its previous
state, :math:`\sigma` the logistic sigmoid and :math:`\odot` the elementwise product. PyTorch keeps two
bias vectors per gate (``b_i*`` on the input side, ``b_h*`` on the recurrent side); they only ever appear
summed, except in the GRU candidate.

* ``rnn_tanh`` (Elman): :math:`h_t = \tanh(W x_t + U h_{t-1} + b)`; ``rnn_relu`` swaps tanh for ReLU.
  The gradient reaching :math:`h_{t-k}` is multiplied by :math:`\prod_j U^\top \mathrm{diag}(1 - h_j^2)`,
  so it shrinks (or grows) geometrically with the distance :math:`k` — the vanishing gradient.
* ``gru`` (Cho et al. 2014): a reset gate :math:`r_t = \sigma(W_r x_t + U_r h_{t-1} + b_r)` decides how
  much of the past enters the candidate :math:`n_t = \tanh(W_n x_t + b_{in} + r_t \odot (U_n h_{t-1} +
  b_{hn}))`, and an update gate :math:`z_t = \sigma(W_z x_t + U_z h_{t-1} + b_z)` mixes old and new:
  :math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`. Where :math:`z_t \approx 1` the state is copied
  forward, and so is its gradient.
* ``lstm`` (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000): input, forget and
  output gates :math:`i_t, f_t, o_t = \sigma(W_{\{i,f,o\}} x_t + U_{\{i,f,o\}} h_{t-1} + b_{\{i,f,o\}})`, a
  candidate :math:`g_t = \tanh(W_g x_t + U_g h_{t-1} + b_g)`, a cell :math:`c_t = f_t \odot c_{t-1} + i_t
  \odot g_t` and an output :math:`h_t = o_t \odot \tanh(c_t)`. The cell path is additive, so its gradient
  is scaled by :math:`f_t` per step rather than by a weight matrix.

:func:`reference_cell_step` computes these equations literally from a layer's weights; tests check the
fused PyTorch modules against it, and :mod:`harness.models.rnn.diagnostics` unrolls it to measure
:math:`\lVert \partial L / \partial h_t \rVert`.

The stack is built from single-layer ``nn.RNN``/``nn.GRU``/``nn.LSTM`` modules so that dropout, a
residual connection and ``LayerNorm`` can sit between layers::

    x ─ Embedding ─ Dropout ─┬─ RNN_1 ─ Dropout ─(+x)─ LayerNorm ─┬─ RNN_2 ─ ... ─ head
                             └────────── residual ─────┘

Padding: when ``attention_mask`` holds zeros, each row's real tokens are gathered to the front (in order)
and run through ``pack_padded_sequence``, so a padding token never touches a real token's state —
left, right or even inner padding gives the same outputs and final state as the unpadded sequence.
At a padded position the output repeats the output of the latest real position before it (zeros if there
is none): with right padding ``logits[:, -1]`` is still the prediction after the last real token, which
is what ``generate`` reads.

Cache: the recurrent state of every layer is an :class:`RNNState`, passed and returned under the name
``past_key_values`` (the name the installed ``GenerationMixin`` carries between steps). Feeding a
sequence in chunks with the returned state gives the same outputs as one full forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from harness.models.rnn.configuration_rnn import RNNConfig
from harness.registry import register_auto

_MODULES = {"rnn_tanh": nn.RNN, "rnn_relu": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


# --------------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------------
class RNNState:
    """The recurrent state of every layer: the "cache" of an RNN.

    ``hidden[l]`` is layer ``l``'s last hidden state, shape ``(num_directions, batch, hidden_size)`` —
    the ``h_0``/``h_n`` layout of ``nn.RNN`` — and, for an LSTM, ``cell[l]`` the matching cell state.
    ``seen_tokens`` counts the positions consumed so far (padding included, like the attention mask), which
    ``generate`` reads through :meth:`get_seq_length` when it continues from a state the caller passed.

    A forward returns a new ``RNNState``; the tensors keep their autograd graph, so truncated BPTT is
    ``state = out.past_key_values.detach()`` between chunks. ``reorder_cache`` (called by beam search) and
    ``batch_select_indices`` / ``batch_repeat_interleave`` change the object in place.
    """

    #: read by ``GenerationMixin._valid_auto_compile_criteria`` and by ``DeferredStopCheck`` (MPS only)
    is_compileable = False
    is_croppable = False

    def __init__(self, hidden: list[torch.Tensor], cell: list[torch.Tensor] | None = None, seen_tokens: int = 0):
        if not hidden:
            raise ValueError("RNNState needs one hidden tensor per layer, got none")
        if cell is not None and len(cell) != len(hidden):
            raise ValueError(f"RNNState: got {len(hidden)} hidden tensors but {len(cell)} cell tensors")
        for h in hidden:
            if h.dim() != 3 or h.shape[1] != hidden[0].shape[1]:
                raise ValueError(
                    f"RNNState: each hidden tensor must be (num_directions, batch={hidden[0].shape[1]}, hidden_size), "
                    f"got {tuple(h.shape)}"
                )
        self.hidden = list(hidden)
        self.cell = None if cell is None else list(cell)
        self.seen_tokens = int(seen_tokens)

    # --- what GenerationMixin calls -------------------------------------------------------------------
    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Positions consumed so far (``GenerationMixin._prefill`` slices the prompt with it)."""
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Keep, in place, the rows of the beams beam search chose: row ``i`` becomes old row ``beam_idx[i]``."""
        self._apply_rows(lambda t: t.index_select(1, beam_idx.to(t.device)))

    # --- batch helpers --------------------------------------------------------------------------------
    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows ``indices`` (in place)."""
        self._apply_rows(lambda t: t[:, indices.to(t.device)])

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat every row ``repeats`` times, as ``generate`` expands a prompt for beams (in place)."""
        self._apply_rows(lambda t: t.repeat_interleave(repeats, dim=1))

    def detach(self) -> "RNNState":
        """A copy cut from the autograd graph (truncated backpropagation through time)."""
        return self._map(lambda t: t.detach())

    def to(self, *args, **kwargs) -> "RNNState":
        return self._map(lambda t: t.to(*args, **kwargs))

    # --- checkpoints (truncated BPTT carries the state across a resume) ------------------------------
    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The state as named tensors (safetensors can store them): ``hidden.<l>``, ``cell.<l>``, ``seen_tokens``."""
        out = {f"hidden.{i}": h.detach().contiguous() for i, h in enumerate(self.hidden)}
        for i, c in enumerate(self.cell or []):
            out[f"cell.{i}"] = c.detach().contiguous()
        out["seen_tokens"] = torch.tensor(self.seen_tokens, dtype=torch.int64)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> "RNNState":
        """The inverse of :meth:`to_tensors`."""
        layers = sum(1 for k in tensors if k.startswith("hidden."))
        hidden = [tensors[f"hidden.{i}"] for i in range(layers)]
        cell = [tensors[f"cell.{i}"] for i in range(layers)] if "cell.0" in tensors else None
        return cls(hidden, cell, int(tensors["seen_tokens"]) if "seen_tokens" in tensors else 0)

    @property
    def batch_size(self) -> int:
        return self.hidden[0].shape[1]

    @property
    def num_layers(self) -> int:
        return len(self.hidden)

    def layer(self, idx: int):
        """Layer ``idx``'s state in the form ``nn.RNN``/``nn.GRU`` (``h``) or ``nn.LSTM`` (``(h, c)``) take."""
        return self.hidden[idx] if self.cell is None else (self.hidden[idx], self.cell[idx])

    def __len__(self) -> int:
        return len(self.hidden)

    def __repr__(self) -> str:
        kind = "h" if self.cell is None else "h, c"
        return (f"RNNState(layers={self.num_layers}, {kind}: {tuple(self.hidden[0].shape)}, "
                f"seen_tokens={self.seen_tokens})")

    def _apply_rows(self, fn) -> None:
        self.hidden = [fn(h) for h in self.hidden]
        if self.cell is not None:
            self.cell = [fn(c) for c in self.cell]

    def _map(self, fn) -> "RNNState":
        return RNNState([fn(h) for h in self.hidden], None if self.cell is None else [fn(c) for c in self.cell],
                        self.seen_tokens)


# --------------------------------------------------------------------------------------------------
# The cell equations, written out (reference for tests and for the gradient diagnostic)
# --------------------------------------------------------------------------------------------------
def reference_cell_step(cell: str, rnn: nn.RNNBase, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None,
                        reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""One step of a single-layer ``nn.RNN``/``nn.GRU``/``nn.LSTM`` computed from its weights.

    ``x``: ``(batch, input_size)``; ``h``, ``c``: ``(batch, hidden_size)``. Returns ``(h_t, c_t)``
    (``c_t`` is ``None`` unless ``cell == "lstm"``). PyTorch stacks the gates row-wise in ``weight_ih`` /
    ``weight_hh``: GRU as (r, z, n), LSTM as (i, f, g, o).
    """
    sfx = "_l0_reverse" if reverse else "_l0"
    w_ih, w_hh = getattr(rnn, "weight_ih" + sfx), getattr(rnn, "weight_hh" + sfx)
    b_ih, b_hh = getattr(rnn, "bias_ih" + sfx), getattr(rnn, "bias_hh" + sfx)
    gi = x @ w_ih.T + b_ih  # (batch, gates * hidden): W x_t + b_i
    gh = h @ w_hh.T + b_hh  # (batch, gates * hidden): U h_{t-1} + b_h
    if cell == "rnn_tanh":
        return torch.tanh(gi + gh), None  # h_t = tanh(W x_t + U h_{t-1} + b)
    if cell == "rnn_relu":
        return torch.relu(gi + gh), None
    if cell == "gru":
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)  # reset gate
        z = torch.sigmoid(i_z + h_z)  # update gate
        n = torch.tanh(i_n + r * h_n)  # candidate: the reset gate scales U_n h_{t-1} + b_hn
        return (1 - z) * n + z * h, None
    if cell == "lstm":
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # c_t = f ⊙ c_{t-1} + i ⊙ g
        return torch.sigmoid(o) * torch.tanh(c_new), c_new  # h_t = o ⊙ tanh(c_t)
    raise ValueError(f"cell must be one of {tuple(_MODULES)}, got {cell!r}")


# --------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------
class RNNLayer(nn.Module):
    """One recurrent layer: ``RNN → Dropout → (+ input, if the widths match and config.residual) → LayerNorm``.

    Works on a padded tensor ``(batch, time, input_size)`` or on a ``PackedSequence`` (the elementwise
    steps run on ``.data``, which holds the real tokens only).
    """

    def __init__(self, config: RNNConfig, input_size: int, layer_idx: int):
        super().__init__()
        self.cell = config.cell
        self.layer_idx = layer_idx
        kwargs = {}
        if config.cell.startswith("rnn_"):
            kwargs["nonlinearity"] = "relu" if config.cell == "rnn_relu" else "tanh"
        self.rnn = _MODULES[config.cell](
            input_size, config.hidden_size, num_layers=1, batch_first=True, bidirectional=config.bidirectional, **kwargs
        )
        self.dropout = nn.Dropout(config.dropout)
        self.use_residual = bool(config.residual and input_size == config.output_size)
        self.norm = nn.LayerNorm(config.output_size, eps=config.layer_norm_eps) if config.layer_norm else None

    def post_rnn(self, out: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        """Dropout, residual and LayerNorm on a layer's raw recurrent output (any leading shape)."""
        y = self.dropout(out)
        if self.use_residual:
            y = y + inp
        if self.norm is not None:
            y = self.norm(y)
        return y

    def forward(self, x, hx=None):
        out, new_hx = self.rnn(x, hx)
        if isinstance(x, PackedSequence):
            return out._replace(data=self.post_rnn(out.data, x.data)), new_hx
        return self.post_rnn(out, x), new_hx


class RNNPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the class attributes ``transformers`` reads.

    Initialisation (Zaremba, Sutskever & Vinyals 2014, "Recurrent Neural Network Regularization"): every
    weight and bias of the embedding, the recurrent layers and the linear heads is drawn from
    ``U(-init_range, init_range)`` (default 0.1), except linear-layer biases (zero), ``LayerNorm`` (weight 1,
    bias 0) and the LSTM forget gate, whose total bias starts at ``config.forget_bias`` (default 1.0,
    Jozefowicz et al. 2015) so that the cell path carries gradient from the first step of training.
    """

    config_class = RNNConfig
    base_model_prefix = "rnn"
    main_input_name = "input_ids"
    _no_split_modules = ["RNNLayer"]
    #: a recurrent model cannot be rolled back to an earlier position (assisted generation refuses it)
    _is_stateful = True
    #: what ``past_key_values`` holds (truncated BPTT restores it from a checkpoint through this class)
    cache_class = RNNState

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``, then every tensor moved to freshly allocated memory.

        The loaded tensors can start at any byte offset of the safetensors buffer (wherever the JSON
        header ends); CPU kernels take a different vectorised path on memory that is not 64-byte aligned
        and the last bit of the outputs changes. Copying the (small) weights makes a loaded model's
        logits bit-identical to the saved model's.
        """
        result = super().from_pretrained(*args, **kwargs)
        model = result[0] if isinstance(result, tuple) else result
        with torch.no_grad():
            for tensor in list(model.parameters()) + list(model.buffers()):
                if tensor.device.type == "cpu" and tensor.data_ptr() % 64:
                    tensor.data = tensor.data.clone(memory_format=torch.contiguous_format)
        return result

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate must not build a DynamicCache (key/value tensors) for us: the first forward creates the
        # RNNState and GenerationMixin carries it along under ``past_key_values``
        return False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        r = self.config.init_range
        if isinstance(module, nn.Embedding):
            init.uniform_(module.weight, -r, r)
        elif isinstance(module, nn.Linear):
            init.uniform_(module.weight, -r, r)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.RNNBase):
            for _, param in module.named_parameters():
                init.uniform_(param, -r, r)
            if isinstance(module, nn.LSTM):
                hsz = module.hidden_size
                for name, param in module.named_parameters():
                    # a slice loses the "already loaded" flag the init helpers check, so check it on the whole
                    if name.startswith("bias_") and not getattr(param, "_is_hf_initialized", False):
                        # rows [H, 2H) are the forget gate; b_ih + b_hh = forget_bias
                        param[hsz : 2 * hsz].fill_(self.config.forget_bias if name.startswith("bias_ih") else 0.0)


def _chunk_mask(attention_mask, batch: int, length: int, has_cache: bool) -> torch.Tensor | None:
    """The ``(batch, length)`` boolean mask of the current input, or ``None`` when nothing is padding.

    With a cache, ``generate`` passes the mask of the whole sequence so far; its last ``length`` columns
    belong to the current input.
    """
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2 or attention_mask.shape[0] != batch:
        raise ValueError(f"attention_mask must be (batch={batch}, time), got {tuple(attention_mask.shape)}")
    if attention_mask.shape[1] != length:
        if not (has_cache and attention_mask.shape[1] > length):
            raise ValueError(
                f"attention_mask has {attention_mask.shape[1]} positions but the input has {length} "
                "(a longer mask is only accepted together with past_key_values)"
            )
        attention_mask = attention_mask[:, -length:]
    mask = attention_mask.bool()
    return None if bool(mask.all()) else mask


def _carry_forward(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """At each padded position, repeat the output of the latest real position before it (zeros if none)."""
    _, time = mask.shape
    pos = torch.arange(time, device=mask.device).expand_as(mask)
    src = torch.where(mask, pos, torch.full_like(pos, -1)).cummax(dim=1).values  # (batch, time)
    out = y.gather(1, src.clamp(min=0).unsqueeze(-1).expand_as(y))
    return out * (src >= 0).unsqueeze(-1).to(y.dtype)


class RNNModel(RNNPreTrainedModel):
    """The bare recurrent encoder: embeddings and the layer stack, no head.

    Returns ``BaseModelOutputWithPast``: ``last_hidden_state`` ``(batch, time, hidden_size *
    num_directions)`` (the top layer's output after its dropout/residual/LayerNorm), ``past_key_values``
    the final :class:`RNNState` (when ``use_cache``), and with ``output_hidden_states`` the embeddings plus
    every layer's output.
    """

    def __init__(self, config: RNNConfig, extra_input_size: int = 0):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
        #: width of ``inputs_embeds``: the embedding plus any per-token features a head concatenates to it
        #: (the tagger's character features)
        self.input_size = config.embedding_size + extra_input_size
        self.layers = nn.ModuleList(
            RNNLayer(config, self.input_size if i == 0 else config.output_size, i) for i in range(config.num_layers)
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        past_key_values: RNNState | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        token_type_ids: torch.Tensor | None = None,  # accepted (tokenizers emit it) and ignored
    ):
        r"""
        Args:
            input_ids: ``(batch, time)`` token ids (or ``inputs_embeds``: ``(batch, time, embedding_size)``).
            attention_mask: ``(batch, time)``, 1 for real tokens and 0 for padding; with ``past_key_values``
                it may cover the whole sequence so far (its last ``time`` columns are used).
            past_key_values: the :class:`RNNState` to start from (default: zeros).
            use_cache: return the final state (default ``config.use_cache``).
        """
        config = self.config
        use_cache = config.use_cache if use_cache is None else use_cache
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = config.return_dict if return_dict is None else return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if input_ids is not None and input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, time), got shape {tuple(input_ids.shape)}")
        if inputs_embeds is not None and (inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.input_size):
            raise ValueError(
                f"inputs_embeds must be (batch, time, {self.input_size}), "
                f"got {tuple(inputs_embeds.shape)}"
            )
        x = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, E)
        batch, time = x.shape[:2]
        if time == 0:
            raise ValueError("the input has no positions (time = 0)")
        if past_key_values is not None:
            if not isinstance(past_key_values, RNNState):
                raise ValueError(f"past_key_values must be an RNNState, got {type(past_key_values).__name__}")
            if past_key_values.num_layers != config.num_layers or past_key_values.batch_size != batch:
                raise ValueError(
                    f"past_key_values has {past_key_values.num_layers} layers x batch {past_key_values.batch_size}, "
                    f"expected {config.num_layers} layers x batch {batch}"
                )
            if (past_key_values.cell is not None) != (config.cell == "lstm"):
                raise ValueError(f"past_key_values {'has' if past_key_values.cell is not None else 'lacks'} cell states "
                                 f"but the cell is {config.cell!r}")
        mask = _chunk_mask(attention_mask, batch, time, past_key_values is not None)

        x = self.dropout(x)
        states_in = [None if past_key_values is None else past_key_values.layer(i) for i in range(config.num_layers)]
        if mask is None:
            # no padding: plain (batch, time, features) tensors all the way
            outputs = [x]
            states_out = []
            for layer, hx in zip(self.layers, states_in):
                x, new_hx = layer(x, hx)
                outputs.append(x)
                states_out.append(new_hx)
            hidden_states = tuple(outputs) if output_hidden_states else None
        else:
            x, hidden_states, states_out = self._packed_stack(x, mask, states_in, output_hidden_states)

        state = None
        if use_cache:
            seen = 0 if past_key_values is None else past_key_values.seen_tokens
            if config.cell == "lstm":
                state = RNNState([h for h, _ in states_out], [c for _, c in states_out], seen + time)
            else:
                state = RNNState(list(states_out), None, seen + time)
        if not return_dict:
            return tuple(v for v in (x, state, hidden_states) if v is not None)
        return BaseModelOutputWithPast(last_hidden_state=x, past_key_values=state, hidden_states=hidden_states)

    def _packed_stack(self, x, mask, states_in, output_hidden_states):
        """Run the stack on the real tokens only; return outputs in the original positions."""
        batch, time, _ = x.shape
        lengths = mask.sum(dim=1)  # (B,)
        pos = torch.arange(time, device=x.device).expand(batch, time)
        # (B, T): for each row, the positions of its real tokens in order, then those of its padding
        perm = torch.argsort(torch.where(mask, pos, pos + time), dim=1)
        inv = torch.argsort(perm, dim=1)  # aligned index of each original position

        def to_original(packed):
            aligned, _ = pad_packed_sequence(packed, batch_first=True, total_length=time)  # (B, T, F)
            y = aligned.gather(1, inv.unsqueeze(-1).expand_as(aligned))  # (B, T, F) back in place
            return _carry_forward(y, mask)

        aligned_x = x.gather(1, perm.unsqueeze(-1).expand_as(x))  # (B, T, E), real tokens first
        # rows without a real token still need length >= 1 for packing; their state is restored below
        packed = pack_padded_sequence(aligned_x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        outputs = [_carry_forward(x, mask)] if output_hidden_states else None
        states_out = []
        for layer, hx in zip(self.layers, states_in):
            packed, new_hx = layer(packed, hx)
            if output_hidden_states:
                outputs.append(to_original(packed))
            states_out.append(new_hx)
        empty = lengths == 0
        if bool(empty.any()):
            keep = empty.view(1, batch, 1)  # (1, B, 1) broadcasts over (directions, B, H)

            def restore(new, old):
                return torch.where(keep, torch.zeros_like(new) if old is None else old, new)

            fixed = []
            for new_hx, hx in zip(states_out, states_in):
                if isinstance(new_hx, tuple):
                    fixed.append(tuple(restore(n, None if hx is None else o) for n, o in zip(new_hx, hx or (None, None))))
                else:
                    fixed.append(restore(new_hx, hx))
            states_out = fixed
        y = outputs[-1] if output_hidden_states else to_original(packed)
        return y, (tuple(outputs) if output_hidden_states else None), states_out


class RNNForCausalLM(RNNPreTrainedModel, GenerationMixin):
    r"""A recurrent language model: :math:`p(w_{t+1} \mid w_{\le t}) = \mathrm{softmax}(V h_t + b)`.

    ``labels`` are the input ids themselves (shifted inside): the loss is the mean cross-entropy of
    predicting token :math:`t+1` from position :math:`t`, skipping labels of -100 and every pair that
    touches a padded position. Returns ``CausalLMOutputWithPast`` whose ``past_key_values`` is the
    :class:`RNNState`; ``generate`` (greedy, beam, sampling) feeds one new token per step with it.
    """

    _tied_weights_keys = {"lm_head.weight": "rnn.embeddings.weight"}

    def __init__(self, config: RNNConfig):
        if config.bidirectional:
            raise ValueError(
                "RNNForCausalLM needs config.bidirectional=False, got True: a bidirectional layer reads the "
                "tokens the model is asked to predict (use RNNModel or a classification head instead)"
            )
        super().__init__(config)
        self.rnn = RNNModel(config)
        project = config.tie_word_embeddings and config.hidden_size != config.embedding_size
        # tying needs the output layer to read embedding_size features: project hidden_size down first
        self.lm_proj = nn.Linear(config.hidden_size, config.embedding_size, bias=False) if project else None
        head_in = config.embedding_size if config.tie_word_embeddings else config.hidden_size
        self.lm_head = nn.Linear(head_in, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.rnn.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.rnn.embeddings = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        past_key_values: RNNState | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        shift_labels: torch.LongTensor | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,  # accepted and ignored
        output_attentions: bool | None = None,
    ):
        r"""
        Args:
            labels: ``(batch, time)``; usually ``input_ids`` with -100 where no loss is wanted. Shifted
                inside: position ``t`` is scored on ``labels[:, t + 1]``.
            shift_labels: instead of ``labels``, targets already aligned with the positions
                (``shift_labels[:, t]`` follows position ``t``). For truncated BPTT over chunks
                ``x[:, i:j]``, pass ``shift_labels=x[:, i + 1:j + 1]`` so the last position of each chunk
                is scored on the first token of the next one.
            logits_to_keep: compute logits for the last ``logits_to_keep`` positions only (0: all);
                ``generate`` sets it to 1.
            num_items_in_batch: if given, the loss is the summed cross-entropy divided by it (gradient
                accumulation over batches of unequal token counts) instead of the mean.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if output_attentions:
            raise ValueError("an RNN has no attention weights: output_attentions must be False/None, got True")
        if labels is not None and shift_labels is not None:
            raise ValueError("pass labels (shifted inside) or shift_labels (already aligned), not both")
        if (labels is not None or shift_labels is not None) and logits_to_keep:
            raise ValueError(f"a loss needs logits at every position; got logits_to_keep={logits_to_keep}")
        out = self.rnn(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            past_key_values=past_key_values,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden = out.last_hidden_state  # (B, T, H)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        if self.lm_proj is not None:
            hidden = self.lm_proj(hidden)  # (B, T, E)
        logits = self.lm_head(hidden)  # (B, T, V)

        loss = None
        if labels is not None or shift_labels is not None:
            given = labels if labels is not None else shift_labels
            name = "labels" if labels is not None else "shift_labels"
            if given.shape != logits.shape[:2]:
                raise ValueError(f"{name} must be (batch, time) = {tuple(logits.shape[:2])}, got {tuple(given.shape)}")
            mask = _chunk_mask(attention_mask, *given.shape, past_key_values is not None)
            if labels is not None:
                scored, targets = logits[:, :-1], labels[:, 1:].clone()  # (B, T-1): t predicts t+1
                valid = None if mask is None else mask[:, 1:] & mask[:, :-1]
            else:
                scored, targets = logits, shift_labels.clone()  # (B, T): already aligned
                valid = mask
            if valid is not None:
                targets[~valid] = -100  # no loss from or onto padding
            loss = F.cross_entropy(
                scored.float().reshape(-1, logits.shape[-1]),
                targets.reshape(-1).to(logits.device),
                ignore_index=-100,
                reduction="mean" if num_items_in_batch is None else "sum",
            )
            if num_items_in_batch is not None:
                loss = loss / num_items_in_batch
        if not return_dict:
            rest = tuple(v for v in (out.past_key_values, out.hidden_states) if v is not None)
            return ((loss,) if loss is not None else ()) + (logits,) + rest
        return CausalLMOutputWithPast(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states
        )


def _classification_loss(config: RNNConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    problem = config.problem_type
    if problem is None:
        if config.num_labels == 1:
            problem = "regression"
        elif labels.dtype in (torch.long, torch.int):
            problem = "single_label_classification"
        else:
            problem = "multi_label_classification"
    if problem == "regression":
        if config.num_labels == 1:
            return F.mse_loss(logits.squeeze(-1).float(), labels.float().view(-1))
        return F.mse_loss(logits.float(), labels.float())
    if problem == "single_label_classification":
        return F.cross_entropy(logits.float().view(-1, config.num_labels), labels.view(-1), ignore_index=-100)
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class _RNNWithClassifier(RNNPreTrainedModel):
    """The encoder, dropout and a linear classifier over its outputs: shared by the sequence- and
    token-classification heads, which differ only in what they feed the classifier."""

    def __init__(self, config: RNNConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.rnn = RNNModel(config)
        p = config.dropout if config.classifier_dropout is None else config.classifier_dropout
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.output_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.rnn.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.rnn.embeddings = value


class RNNForSequenceClassification(_RNNWithClassifier):
    """Sequence classification or regression on a pooled sequence vector (``config.pooling``).

    ``"last"``: the output after the last real token (bidirectional: forward half there, backward half at
    the first real token, i.e. each direction after it has read the whole sentence); ``"mean"`` / ``"max"``
    over the real tokens. Loss per ``config.problem_type`` (inferred like ``transformers`` when unset):
    MSE for regression, cross-entropy for single-label, BCE-with-logits for multi-label.
    """


    def pool(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``(batch, time, features)`` → ``(batch, features)`` per ``config.pooling``."""
        batch, time, _ = hidden.shape
        if mask is None:
            mask = torch.ones(batch, time, dtype=torch.bool, device=hidden.device)
        mode = self.config.pooling
        if mode == "last":
            # padded positions repeat the latest real output, so the last column is after the last real token
            last = hidden[:, -1]
            if not self.config.bidirectional:
                return last
            hsz = self.config.hidden_size
            first = mask.int().argmax(dim=1)  # (B,) first real position (0 for an all-padding row)
            backward = hidden[torch.arange(batch, device=hidden.device), first, hsz:]
            return torch.cat([last[:, :hsz], backward], dim=-1)
        m = mask.unsqueeze(-1)  # (B, T, 1)
        if mode == "mean":
            return (hidden * m.to(hidden.dtype)).sum(1) / m.sum(1).clamp(min=1).to(hidden.dtype)
        pooled = hidden.masked_fill(~m, float("-inf")).max(dim=1).values
        return torch.where(torch.isinf(pooled), torch.zeros_like(pooled), pooled)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        token_type_ids: torch.Tensor | None = None,  # accepted and ignored
    ):
        return_dict = self.config.return_dict if return_dict is None else return_dict
        out = self.rnn(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                       use_cache=False, output_hidden_states=output_hidden_states, return_dict=True)
        hidden = out.last_hidden_state
        mask = _chunk_mask(attention_mask, *hidden.shape[:2], False)
        logits = self.classifier(self.dropout(self.pool(hidden, mask)))  # (B, num_labels)
        loss = None if labels is None else _classification_loss(self.config, logits, labels)
        if not return_dict:
            rest = (out.hidden_states,) if out.hidden_states is not None else ()
            return ((loss,) if loss is not None else ()) + (logits,) + rest
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


class RNNForTokenClassification(_RNNWithClassifier):
    """Per-token labels (tagging, NER): a linear layer on every position's output.

    The loss is the mean cross-entropy over positions whose label is not -100 and that are not padding.
    Bidirectional encoders (BiLSTM taggers) are the usual choice here.
    """


    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,  # accepted and ignored
    ):
        return_dict = self.config.return_dict if return_dict is None else return_dict
        out = self.rnn(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                       use_cache=False, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            if labels.shape != logits.shape[:2]:
                raise ValueError(f"labels must be (batch, time) = {tuple(logits.shape[:2])}, got {tuple(labels.shape)}")
            labels = labels.clone()
            mask = _chunk_mask(attention_mask, *labels.shape, False)
            if mask is not None:
                labels[~mask] = -100
            loss = F.cross_entropy(
                logits.float().reshape(-1, self.num_labels), labels.reshape(-1), ignore_index=-100,
                reduction="mean" if num_items_in_batch is None else "sum",
            )
            if num_items_in_batch is not None:
                loss = loss / num_items_in_batch
        if not return_dict:
            rest = (out.hidden_states,) if out.hidden_states is not None else ()
            return ((loss,) if loss is not None else ()) + (logits,) + rest
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


register_auto(
    RNNConfig,
    AutoModel=RNNModel,
    AutoModelForCausalLM=RNNForCausalLM,
    AutoModelForSequenceClassification=RNNForSequenceClassification,
    AutoModelForTokenClassification=RNNForTokenClassification,
)

__all__ = [
    "RNNState",
    "RNNPreTrainedModel",
    "RNNModel",
    "RNNForCausalLM",
    "RNNForSequenceClassification",
    "RNNForTokenClassification",
    "reference_cell_step",
]
