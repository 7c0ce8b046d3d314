"""The engine and occlusion maps on CUDA give the CPU's answers (skipped without a GPU)."""

import numpy as np
import pytest
import torch

from sqlml.incremental.engine import VideoEngine
from sqlml.incremental.graph import compile_model
from sqlml.incremental.occlusion import occlusion_map

from .test_engine import eager_cost, frames_with_moving_square, small_vgg

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_video_engine_on_cuda_matches_cpu():
    model = small_vgg()
    cpu = VideoEngine(compile_model(model, (3, 48, 48)), cost=eager_cost())
    gpu_model = small_vgg().cuda()
    gpu_model.load_state_dict(model.state_dict())
    gpu = VideoEngine(compile_model(gpu_model, (3, 48, 48)), cost=eager_cost())
    for frame in frames_with_moving_square(8):
        want = cpu.step(frame)
        got = gpu.step(frame.cuda())
        assert got.mode == want.mode
        assert (got.output.cpu() - want.output).abs().max().item() <= 1e-4


def test_occlusion_on_cuda_matches_naive():
    model = small_vgg().cuda()
    program = compile_model(model, (3, 48, 48))
    x = torch.rand(1, 3, 48, 48, device="cuda")
    fast = occlusion_map(program, x, patch=8, stride=6)
    slow = occlusion_map(program, x, patch=8, stride=6, mode="full")
    assert np.abs(fast.heatmap - slow.heatmap).max() <= 1e-4
