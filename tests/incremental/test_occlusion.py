"""Occlusion maps: batched incremental inference equals naive re-inference."""

import numpy as np
import pytest
import torch

from sqlml.incremental.graph import compile_model
from sqlml.incremental.nets import pnet
from sqlml.incremental.occlusion import occlusion_map, save_overlay

from .test_engine import small_vgg
from .test_graph import Untraceable
from .test_patches import Concat, Residual


@pytest.mark.parametrize("make", [small_vgg, Residual, pnet])
def test_incremental_heatmap_equals_naive(make):
    model = make().eval()
    shape = (3, 40, 44)
    program = compile_model(model, shape)
    x = torch.rand(1, *shape) * 2 - 1
    target = 1 if make is pnet else None
    fast = occlusion_map(program, x, patch=8, stride=5, color=0.0, target=target, batch=7)
    slow = occlusion_map(program, x, patch=8, stride=5, color=0.0, target=target, batch=7, mode="full")
    assert fast.mode == "incremental" and slow.mode == "full"
    assert fast.heatmap.shape == slow.heatmap.shape == (len(range(0, 33, 5)), len(range(0, 37, 5)))
    assert np.abs(fast.heatmap - slow.heatmap).max() <= 1e-4
    assert fast.target == slow.target and fast.base_score == pytest.approx(slow.base_score)
    assert 0.0 < fast.stats["recomputed"] < 1.0


def test_heatmap_values_are_score_drops():
    """Check one heat-map cell by hand: base score minus the score with that square occluded."""
    model = small_vgg()
    program = compile_model(model, (3, 48, 48))
    x = torch.rand(1, 3, 48, 48)
    result = occlusion_map(program, x, patch=12, stride=12, color=[0.2, 0.4, 0.6], target=2)
    occluded = x.clone()
    occluded[:, :, 12:24, 24:36] = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)
    with torch.inference_mode():
        base = model(x).softmax(1)[0, 2].item()
        drop = base - model(occluded).softmax(1)[0, 2].item()
    assert result.heatmap.shape == (4, 4)
    assert result.heatmap[1, 2] == pytest.approx(drop, abs=1e-5)
    assert result.positions[6] == (12, 24)


def test_concat_network_and_border_patches():
    model = Concat().eval()
    program = compile_model(model, (3, 30, 30))
    x = torch.rand(1, 3, 30, 30)
    fast = occlusion_map(program, x, patch=7, stride=23, target=0)  # corners only: shifted windows
    slow = occlusion_map(program, x, patch=7, stride=23, target=0, mode="full")
    assert fast.heatmap.shape == (2, 2)
    assert np.abs(fast.heatmap - slow.heatmap).max() <= 1e-4


def test_tau_is_approximate_and_cheaper():
    model = small_vgg()
    program = compile_model(model, (3, 48, 48))
    x = torch.rand(1, 3, 48, 48)
    exact = occlusion_map(program, x, patch=10, stride=6)
    approx = occlusion_map(program, x, patch=10, stride=6, tau=0.5)
    assert approx.stats["recomputed"] < exact.stats["recomputed"]
    correlation = np.corrcoef(exact.heatmap.ravel(), approx.heatmap.ravel())[0, 1]
    assert correlation > 0.5


def test_untraceable_model_runs_naive_and_says_why():
    model = Untraceable().eval()
    program = compile_model(model, (3, 16, 16))
    result = occlusion_map(program, torch.rand(1, 3, 16, 16), patch=4, stride=4, target=0)
    assert result.mode == "full" and "traced" in result.stats["reason"]
    assert result.heatmap.shape == (4, 4)


def test_overlay_png(tmp_path):
    import cv2

    image = np.zeros((30, 40, 3), np.uint8)
    heatmap = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = save_overlay(tmp_path / "heat.png", image, heatmap)
    written = cv2.imread(path)
    assert written.shape == (30, 40, 3)
    assert not np.array_equal(written[25, 35], written[2, 2])  # the hot corner differs from the cold one
