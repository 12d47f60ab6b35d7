"""Training steps: the standard one, and truncated BPTT carrying the recurrent state across batches and
across a checkpoint (as safetensors)."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from harness.losses import ModelOutputLoss
from harness.models.rnn import RNNConfig, RNNForCausalLM, RNNState
from harness.training.steps import StandardStep, TruncatedBPTTStep


def _model():
    torch.manual_seed(0)
    return RNNForCausalLM(RNNConfig(vocab_size=11, embedding_size=6, hidden_size=5, num_layers=2, cell="lstm"))


def _windows():
    g = torch.Generator().manual_seed(0)
    stream = torch.randint(0, 11, (3, 13), generator=g)  # 3 rows, each read in windows of 4
    return [{"input_ids": stream[:, i:i + 4], "shift_labels": stream[:, i + 1:i + 5]} for i in range(0, 12, 4)]


def test_rnn_state_round_trips_through_tensors():
    state = RNNState([torch.randn(1, 3, 5), torch.randn(1, 3, 5)], [torch.randn(1, 3, 5), torch.randn(1, 3, 5)], 7)
    back = RNNState.from_tensors(state.to_tensors())
    assert back.seen_tokens == 7 and back.cell is not None
    for a, b in zip(state.hidden + state.cell, back.hidden + back.cell):
        assert torch.equal(a, b)
    gru = RNNState([torch.randn(1, 2, 4)])
    assert RNNState.from_tensors(gru.to_tensors()).cell is None


def test_truncated_bptt_carries_the_state_and_restores_it_from_a_checkpoint(tmp_path, fresh_accelerate):
    acc = Accelerator(cpu=True)
    loss = ModelOutputLoss()
    w = _windows()

    model = _model()
    step = TruncatedBPTTStep()
    step.start_epoch()
    first = step(model, w[0], loss, acc)
    assert step.carried.seen_tokens == 4 and not step.carried.hidden[0].requires_grad  # detached
    step(model, w[1], loss, acc)
    save_file(step.state_tensors(), str(tmp_path / "state.safetensors"))
    third = step(model, w[2], loss, acc)

    restored = TruncatedBPTTStep()
    restored.load_state_tensors(load_file(str(tmp_path / "state.safetensors")), model)
    assert restored.state_tensors().keys() == step.state_tensors().keys()  # a checkpoint before any step
    again = restored(model, w[2], loss, acc)
    assert torch.equal(again, third)
    # without the carried state the third window scores differently: the state matters
    assert not torch.equal(StandardStep()(model, {**w[2]}, loss, acc), third)
    # a new epoch starts from a zero state
    restored.start_epoch()
    assert restored.carried is None and torch.equal(restored(_model(), w[0], loss, acc), first)
