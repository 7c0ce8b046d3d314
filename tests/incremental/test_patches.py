"""The update-patch rules, the dirty-cell masks, and every layer type updated cell by cell against full inference."""

import zlib

import pytest
import torch
import torch.nn as nn

from sqlml.incremental import masks, patches
from sqlml.incremental.cost import CostModel
from sqlml.incremental.engine import VideoEngine
from sqlml.incremental.graph import compile_model

# -- hand-checked rules ---------------------------------------------------------------------


def test_conv_3x3_stride1_pad1():
    axis = patches.Axis(extent=3, stride=1, pad=1)
    assert axis.affected(4, 5, 10) == (3, 6)  # one cell feeds its three neighbours
    assert axis.read_in(3, 6) == (2, 7)
    assert axis.affected(0, 1, 10) == (0, 2)  # clipped at the border
    assert axis.read_in(0, 2) == (-1, 3)  # reaches into the padding


def test_conv_stride2():
    axis = patches.Axis(extent=3, stride=2, pad=1)
    # output o reads inputs 2o-1 .. 2o+1: input 4 feeds only output 2, input 5 feeds 2 and 3
    assert axis.affected(4, 5, 5) == (2, 3)
    assert axis.affected(5, 6, 5) == (2, 4)
    assert axis.read_in(2, 4) == (3, 8)


def test_stride_larger_than_kernel_can_skip_a_change():
    axis = patches.Axis(extent=1, stride=2, pad=0)  # 1x1 conv, stride 2, reads even cells only
    o0, o1 = axis.affected(3, 4, 5)
    assert o0 >= o1


def test_ceil_mode_pool_window_past_the_border():
    axis = patches.Axis(extent=2, stride=2, pad=0)  # MaxPool2d(2, 2, ceil_mode=True) on 5 cells -> 3
    assert axis.affected(4, 5, 3) == (2, 3)
    assert axis.read_in(2, 3) == (4, 6)  # cell 5 does not exist: padded with -inf


def test_dilation_is_an_effective_kernel():
    axis = patches.Axis(extent=2 * (3 - 1) + 1, stride=1, pad=2)  # k=3, d=2
    assert axis.affected(5, 6, 10) == (3, 8)


def test_projective_field_cap_keeps_the_centre():
    assert patches.cap(2, 12, 20, 0.25) == (4, 9)  # at most round(0.25 * 20) = 5 cells, centred
    assert patches.cap(2, 5, 20, 0.25) == (2, 5)  # already narrow
    assert patches.cap(2, 12, 20, 0.0) == (2, 12)  # tau 0: exact


def test_shift_inside():
    assert patches.shift_inside(8, 4, 10) == (6, 10)
    assert patches.shift_inside(-2, 4, 10) == (0, 4)


# -- every layer type against full inference ------------------------------------------------

LAYERS = {
    "conv": lambda: nn.Conv2d(3, 5, 3, padding=1),
    "conv_stride2": lambda: nn.Conv2d(3, 5, 3, stride=2, padding=1),
    "conv_5x5_nopad": lambda: nn.Conv2d(3, 4, 5),
    "conv_dilated": lambda: nn.Conv2d(3, 4, 3, padding=2, dilation=2),
    "conv_grouped": lambda: nn.Conv2d(3, 6, 3, padding=1, groups=3),
    "conv_same": lambda: nn.Conv2d(3, 4, 4, padding="same"),
    "conv_rect": lambda: nn.Conv2d(3, 4, (3, 5), stride=(1, 2), padding=(1, 2)),
    "conv_1x1_stride2": lambda: nn.Conv2d(3, 4, 1, stride=2),
    "maxpool": lambda: nn.MaxPool2d(2),
    "maxpool_3s2p1": lambda: nn.MaxPool2d(3, 2, padding=1),
    "maxpool_ceil": lambda: nn.MaxPool2d(2, 2, ceil_mode=True),
    "maxpool_dilated": lambda: nn.MaxPool2d(3, 1, padding=1, dilation=2),
    "avgpool": lambda: nn.AvgPool2d(2),
    "avgpool_pad": lambda: nn.AvgPool2d(3, 2, padding=1),
    "avgpool_pad_exclude": lambda: nn.AvgPool2d(3, 2, padding=1, count_include_pad=False),
    "avgpool_ceil": lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True),
    "avgpool_ceil_exclude": lambda: nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
    "avgpool_divisor": lambda: nn.AvgPool2d(3, 1, padding=1, divisor_override=5),
    "batchnorm": lambda: _bn(3),
    "relu": nn.ReLU,
    "prelu": lambda: nn.PReLU(3),
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "hardswish": nn.Hardswish,
    "softmax_channels": lambda: nn.Softmax(dim=1),
    "dropout_eval": lambda: nn.Dropout(0.5),
    "identity": nn.Identity,
}


def _bn(c):
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    return bn.eval()


class Wrapped(nn.Module):
    """The layer under test between two convs, so it sees and passes on a patch."""

    def __init__(self, layer):
        super().__init__()
        self.before = nn.Conv2d(3, 3, 3, padding=1)
        self.layer = layer
        self.after = nn.Conv2d(self._channels(), 2, 3, padding=1)

    def _channels(self):
        out = self.layer(torch.zeros(1, 3, 23, 29))
        return out.shape[1]

    def forward(self, x):
        return self.after(self.layer(self.before(x)))


def box_mask(shape, box):
    mask = torch.zeros(*shape[-2:], dtype=torch.bool)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def always_update():
    """A cost model that always updates (no timing, no call overhead): deterministic work."""
    return CostModel(margin=10.0, adaptive=False, call_seconds=0.0)


def incremental_output(model, shape, x_old, x_new, program=None, block=2):
    """Full pass on ``x_old``, then an exact update to ``x_new``: the new output (asserted incremental)."""
    program = program or compile_model(model, shape)
    assert program.supported, program.reason
    engine = VideoEngine(program, cost=always_update(), block=block)
    engine.step(x_old)
    result = engine.step(x_new)
    assert result.mode == "incremental", result.reason
    return result.output, program


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_exact_on_random_patches(name):
    model = Wrapped(LAYERS[name]()).eval()
    shape = (3, 23, 29)
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    x = torch.randn(1, *shape, generator=generator)
    program = compile_model(model, shape)
    for trial in range(6):
        h = int(torch.randint(1, 12, (1,), generator=generator))
        w = int(torch.randint(1, 12, (1,), generator=generator))
        y0 = int(torch.randint(0, shape[1] - h + 1, (1,), generator=generator))
        x0 = int(torch.randint(0, shape[2] - w + 1, (1,), generator=generator))
        if trial == 0:  # a corner patch: padding and ceil_mode overhang
            y0, x0 = shape[1] - h, shape[2] - w
        x_new = x.clone()
        x_new[..., y0 : y0 + h, x0 : x0 + w] = torch.randn(1, 3, h, w, generator=generator)
        got, _ = incremental_output(model, shape, x, x_new, program)
        with torch.inference_mode():
            want = model(x_new)
        assert (got - want).abs().max().item() <= 1e-4, (name, trial)
        x = x_new
    layer_node = program.by_name["layer"]
    assert layer_node.local


@pytest.mark.parametrize("name", ["conv", "maxpool_ceil", "avgpool_ceil_exclude"])
def test_planned_mask_is_exactly_the_affected_outputs(name):
    """A hand-sized case: one changed corner cell; the mask covers exactly the outputs that read it."""
    import numpy as np

    layer = nn.Conv2d(3, 2, 3, padding=1) if name == "conv" else LAYERS[name]()
    model = nn.Sequential(layer).eval()
    shape = (3, 9, 9)
    program = compile_model(model, shape)
    changed = np.zeros((9, 9), np.uint8)
    changed[8, 8] = 1
    plan = masks.plan(program, changed)
    dirty = np.argwhere(plan.masks[program.local[-1].name]).tolist()
    out_h = program.local[-1].shape[-2]
    if name == "conv":  # a 3x3 window: the corner cell is read by the 2x2 outputs around it
        assert dirty == [[7, 7], [7, 8], [8, 7], [8, 8]]
    else:  # ceil_mode: 9 cells -> 5 outputs, the last window holds only cell 8
        assert out_h == 5 and dirty == [[4, 4]]
    x = torch.randn(1, *shape)
    x_new = x.clone()
    x_new[..., 8, 8] += 1.0
    with torch.inference_mode():
        changed = (model(x_new) != model(x)).any(dim=1)[0].nonzero().tolist()
    assert changed == dirty


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = _bn(8)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 12, 1, stride=2)
        self.c = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.head = nn.Linear(12, 4)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.b(torch.relu(self.bn(self.a(x)))) + x)  # identity shortcut
        x = self.c(x) + self.down(x)  # projection shortcut, different windows
        return self.head(x.mean(dim=(2, 3)))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.b1 = nn.Conv2d(6, 4, 1)
        self.b3 = nn.Conv2d(6, 4, 3, padding=1)
        self.b5 = nn.Conv2d(6, 4, 5, padding=2)
        self.pool = nn.MaxPool2d(3, 1, padding=1)
        self.out = nn.Conv2d(18, 3, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], dim=1)
        return self.out(x * 0.5)


@pytest.mark.parametrize("model_class", [Residual, Concat])
def test_residual_and_concat_exact(model_class):
    model = model_class().eval()
    shape = (3, 32, 40)
    x = torch.randn(1, *shape)
    program = compile_model(model, shape)
    merges = [n for n in program.local if n.kind == "merge"]
    assert merges, "the merge layers run incrementally"
    for y0, x0, h, w in [(0, 0, 5, 7), (27, 33, 5, 7), (10, 12, 3, 3), (4, 30, 12, 2)]:
        x_new = x.clone()
        x_new[..., y0 : y0 + h, x0 : x0 + w] = torch.randn(1, 3, h, w)
        got, _ = incremental_output(model, shape, x, x_new, program)
        with torch.inference_mode():
            assert (got - model(x_new)).abs().max().item() <= 1e-4
        x = x_new


def test_scattered_changes_recompute_only_their_own_cells():
    """Many small changes spread over the frame (what real footage has): each layer recomputes
    the cells they reach, not a box around them all, and the result is exact."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1)).eval()
    shape = (3, 96, 128)
    program = compile_model(model, shape)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(1, *shape, generator=generator)
    x_new = x.clone()
    for k in range(24):  # 24 small movers, 4 x 4 px each, all over the frame
        y, c = 4 + (k // 6) * 22, 4 + (k % 6) * 20
        x_new[..., y : y + 4, c : c + 4] = torch.randn(1, 3, 4, 4, generator=generator)
    engine = VideoEngine(program, cost=always_update(), block=4)
    engine.step(x)
    result = engine.step(x_new)
    with torch.inference_mode():
        assert (result.output - model(x_new)).abs().max().item() <= 1e-5
    assert result.mode == "incremental"
    assert result.recomputed < 0.2  # the changed cells, grown by two 3x3 windows: about 11% of the frame
