import logging
import math

import pytest
import torch

from camabc_core import losses
from camabc_core.losses import delta_loss

A = [[0.0, 0.0], [0.0, 1.0]]
T = [[1.0, 0.0], [0.0, 1.0]]


def test_delta_loss_hand_computed_value():
    audio = torch.tensor(A, requires_grad=True)
    text = torch.tensor(T, requires_grad=True)

    loss = delta_loss(audio, text, temperature=1.0)
    loss.backward()

    # Cosine similarities: row 0 is a zero vector -> [0, 0]; row 1 -> [0, 1].
    # Row-wise log-softmax diagonal: log(1/2) and 1 - log(1 + e); the loss is minus their mean.
    expected = -(math.log(0.5) + 1.0 - math.log(1.0 + math.e)) / 2
    assert loss.item() == pytest.approx(0.5032, abs=5e-5)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert torch.isfinite(audio.grad).all()
    assert torch.isfinite(text.grad).all()


def test_delta_loss_temperature_scales_similarities():
    loss = delta_loss(torch.tensor(A), torch.tensor(T), temperature=0.5)

    # Similarities divided by 0.5: row 1 becomes [0, 2].
    expected = -(math.log(0.5) + 2.0 - math.log(1.0 + math.exp(2.0))) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_delta_loss_zero_vectors_are_finite():
    first = torch.zeros(3, 4, requires_grad=True)
    second = torch.zeros(3, 4, requires_grad=True)

    loss = delta_loss(first, second)
    loss.backward()

    # Every similarity is 0, so each row is uniform over 3 samples.
    assert loss.item() == pytest.approx(math.log(3.0), abs=1e-6)
    assert torch.isfinite(first.grad).all()
    assert torch.isfinite(second.grad).all()


def test_delta_loss_is_not_symmetric():
    first = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    second = torch.tensor([[1.0, 0.0], [0.0, 1.0]])

    forward = delta_loss(first, second)
    backward = delta_loss(second, first)

    # Row i of the similarity matrix belongs to sample i of the first argument.
    c = 1 / math.sqrt(2)
    expected_forward = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(0.0))) / 2
    expected_backward = (math.log(1 + math.exp(c - 1.0)) + math.log(1 + math.exp(0.0 - c))) / 2
    assert forward.item() == pytest.approx(expected_forward, abs=1e-6)
    assert backward.item() == pytest.approx(expected_backward, abs=1e-6)


def test_delta_loss_single_sample_is_skipped(caplog, monkeypatch):
    monkeypatch.setattr(losses, "_single_sample_skips", 0)
    first = torch.randn(1, 4, requires_grad=True)
    second = torch.randn(1, 4, requires_grad=True)

    with caplog.at_level(logging.WARNING, logger="camabc_core.losses"):
        loss = delta_loss(first, second)
    loss.backward()

    assert loss.item() == 0.0
    assert torch.equal(first.grad, torch.zeros_like(first))
    assert "1 sample" in caplog.text


def test_delta_loss_single_sample_warning_rate_limited(caplog, monkeypatch):
    monkeypatch.setattr(losses, "_single_sample_skips", 0)
    monkeypatch.setattr(losses, "SINGLE_SAMPLE_WARNING_EVERY", 4)

    with caplog.at_level(logging.WARNING, logger="camabc_core.losses"):
        for _ in range(9):
            delta_loss(torch.ones(1, 2), torch.ones(1, 2))

    # Logged on skips 1, 4 and 8.
    assert len(caplog.records) == 3
    assert "(8 such terms skipped so far)" in caplog.records[-1].getMessage()


def test_delta_loss_returns_float32_for_bfloat16():
    first = torch.randn(4, 8).bfloat16()
    second = torch.randn(4, 8).bfloat16()

    assert delta_loss(first, second).dtype == torch.float32


def test_delta_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 4\)"):
        delta_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        delta_loss(torch.zeros(2, 3), torch.zeros(2, 3), temperature=0.0)
