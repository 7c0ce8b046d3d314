"""Which layers run incrementally, which run dense, and models that run whole."""

import torch
import torch.nn as nn

from sqlml.incremental.engine import VideoEngine
from sqlml.incremental.graph import compile_model
from sqlml.incremental.nets import pnet, vgg_style


def test_vgg_style_graph_is_local_up_to_global_pooling():
    program = compile_model(vgg_style((3, 32, 32), 5, {"width": 0.125}), (3, 32, 32))
    kinds = [(n.kind, n.local) for n in program.nodes]
    assert program.supported
    local = [n for n in program.nodes if n.local and n.kind != "input"]
    assert {n.kind for n in local} == {"spatial", "pointwise"}
    assert [n.label.split("(")[0] for n in program.dense] == ["AdaptiveAvgPool2d", "Flatten", "Linear"]
    assert kinds[0] == ("input", True)
    # a conv read only by its ReLU is not kept: the ReLU's output is
    conv = next(n for n in local if n.kind == "spatial" and "Conv2d" in n.label)
    assert conv.name not in program.materialized


def test_pnet_graph_all_local():
    program = compile_model(pnet(), (3, 30, 40))
    assert program.supported and not program.dense
    assert program.by_name["softmax4_1"].kind == "pointwise"
    assert program.by_name["pool1"].kind == "spatial"


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return self.conv(x)
        return -self.conv(x)


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        y.relu_()
        return y


class UnsupportedFirst(nn.Module):
    """An upsampling layer before the convs: nothing can run incrementally."""

    def __init__(self):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(self.up(x))


class UnsupportedMiddle(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.reflect = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.reflect(torch.relu(self.conv1(x))))


def test_untraceable_model_runs_full_with_a_reason():
    program = compile_model(Untraceable(), (3, 16, 16))
    assert not program.supported
    assert "traced" in program.reason


def test_inplace_method_runs_full_with_a_reason():
    program = compile_model(InPlace(), (3, 16, 16))
    assert not program.supported
    assert "relu_" in program.reason


def test_no_local_conv_runs_full_with_a_reason():
    program = compile_model(UnsupportedFirst(), (3, 8, 8))
    assert not program.supported
    assert "up" in program.reason and "Upsample" in program.reason


def test_unsupported_layer_in_the_middle_is_dense_from_there():
    program = compile_model(UnsupportedMiddle(), (3, 16, 16))
    assert program.supported
    assert program.by_name["conv1"].local
    assert not program.by_name["reflect"].local and "reflect" in program.by_name["reflect"].note
    assert not program.by_name["conv2"].local
    assert any("reflect" in note for note in program.notes())


def test_batch_norm_in_training_mode_is_dense():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.Conv2d(4, 2, 3))
    program = compile_model(model, (3, 12, 12))
    assert not program.by_name["_1"].local
    assert "batch" in program.by_name["_1"].note


def test_global_op_mid_network_is_dense():
    class SE(nn.Module):  # squeeze-excitation: a global pool scales every position
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 4)
            self.out = nn.Conv2d(4, 2, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            scale = torch.sigmoid(self.fc(y.mean(dim=(2, 3))))[:, :, None, None]
            return self.out(y * scale)

    program = compile_model(SE(), (3, 12, 12))
    assert program.by_name["conv"].local
    assert not program.by_name["out"].local  # reads the product with a dense (global) value


def test_fallback_models_still_give_the_right_answer():
    """Unsupported models run full inference through the engine: same outputs, mode 'full'."""
    for model in (Untraceable(), InPlace(), UnsupportedFirst(), UnsupportedMiddle()):
        model.eval()
        program = compile_model(model, (3, 12, 12))
        engine = VideoEngine(program)
        x = torch.randn(1, 3, 12, 12)
        for step in range(3):
            x = x.clone()
            x[..., step : step + 2, 0:2] += 1.0
            result = engine.step(x)
            with torch.inference_mode():
                want = model(x.clone())
            assert (result.output - want).abs().max().item() <= 1e-5
            if not program.supported:
                assert result.mode == "full" and result.reason == program.reason
