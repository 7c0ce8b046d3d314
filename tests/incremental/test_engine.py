"""The per-frame engine: exact updates, reuse, the cost model's fallback, thresholds with bounded drift, refresh."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from sqlml.incremental import cells, changes, masks
from sqlml.incremental.cost import CostModel
from sqlml.incremental.engine import VideoEngine
from sqlml.incremental.graph import compile_model
from sqlml.incremental.nets import vgg_style

from .test_patches import Residual, _bn


def small_vgg():
    model = vgg_style((3, 48, 48), 6, {"layers": [8, 8, "M", 16, 16, "M", 16, "M"], "batch_norm": True})
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # non-trivial running statistics
            module.load_state_dict(_bn(module.num_features).state_dict())
    return model.eval()


def frames_with_moving_square(n, shape=(3, 48, 48), side=6):
    base = torch.rand(1, *shape)
    frames = []
    for i in range(n):
        frame = base.clone()
        frame[..., 5 + i : 5 + i + side, 3 * i : 3 * i + side] = 0.9
        if i % 4 == 3:
            frame[..., 40:44, 2:5] = 0.1  # a second, far change
        frames.append(frame)
    return frames


def eager_cost():
    """Always update when anything is cheaper than full; no timing, no call overhead (deterministic)."""
    return CostModel(margin=10.0, adaptive=False, call_seconds=0.0)


def test_exact_mode_matches_full_inference_frame_by_frame():
    for model, shape in ((small_vgg(), (3, 48, 48)), (Residual().eval(), (3, 48, 48))):
        engine = VideoEngine(compile_model(model, shape), cost=eager_cost())
        modes = []
        for frame in frames_with_moving_square(10, shape):
            result = engine.step(frame)
            with torch.inference_mode():
                assert (result.output - model(frame)).abs().max().item() <= 1e-4
            modes.append(result.mode)
        assert modes[0] == "full" and modes.count("incremental") == 9


def test_unchanged_frame_reuses_the_result():
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 48, 48)), cost=eager_cost())
    frame = torch.rand(1, 3, 48, 48)
    first = engine.step(frame)
    again = engine.step(frame.clone())
    assert again.mode == "reuse" and again.recomputed == 0.0
    assert torch.equal(again.output, first.output)


def test_recomputed_fraction_tracks_the_patch():
    model = small_vgg()
    program = compile_model(model, (3, 48, 48))
    engine = VideoEngine(program, cost=eager_cost())
    frame = torch.rand(1, 3, 48, 48)
    engine.step(frame)
    small = frame.clone()
    small[..., 0:2, 0:2] = 0.0
    tiny = engine.step(small).recomputed
    large = small.clone()
    large[..., 10:40, 10:40] = 0.0
    big = engine.step(large).recomputed
    assert 0.0 < tiny < 0.2 < big <= 1.0


def test_moving_camera_falls_back_to_full_and_looks_less_often():
    """Every pixel changes every frame: full inference, looking for change after 1, 2, 4, 8 frames;
    when the camera stops, updates resume within that many frames."""
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 96, 96)), cost=CostModel(adaptive=False, call_seconds=0.0))
    scene = torch.rand(1, 3, 96, 200)
    looked = []
    for i in range(24):
        frame = scene[..., :, 4 * i : 4 * i + 96].contiguous()  # a pan
        result = engine.step(frame)
        assert result.mode == "full"
        looked.append(result.reason.startswith("most of the frame changed"))
        with torch.inference_mode():
            assert (result.output - model(frame)).abs().max().item() <= 1e-5
    assert [i for i, yes in enumerate(looked) if yes] == [1, 2, 4, 8, 16]
    still = frame.clone()
    modes = []
    for i in range(10):  # the camera stops; a small object moves
        still[..., 20:24, 2 * i : 2 * i + 4] = 1.0
        modes.append(engine.step(still.clone()).mode)
    assert "incremental" in modes[:8] and modes[-1] == "incremental"


def test_large_change_falls_back_on_cost():
    """A third of the frame changes: its boxes grow over most deep maps, an update would not pay."""
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 48, 48)), cost=CostModel(adaptive=False))
    frame = torch.rand(1, 3, 48, 48)
    engine.step(frame)
    changed = frame.clone()
    changed[..., 8:36, 8:36] = torch.rand(1, 3, 28, 28)
    result = engine.step(changed)
    assert result.mode == "full" and result.reason.startswith("cost:")
    assert result.estimate.predicted > engine.cost.margin


def test_cost_model_learns_that_updates_are_slow_and_retries_later():
    cost = CostModel(margin=0.85)
    estimate = cost.estimate(total=1.0, recomputed=0.25, arithmetic=0.25, calls=10)
    assert cost.choose(estimate) == "incremental"
    cost.observe("full", 1.0)
    for _ in range(6):  # updates predicted at 0.25x of full (plus 10 calls) take as long as full
        cost.observe("incremental", 1.0, estimate)
    assert cost.corrected(estimate) > 0.9
    assert cost.choose(estimate) == "full"
    for _ in range(30):  # full passes chosen only because of what was learned let it fade
        cost.observe("full", 1.0, estimate)
    assert cost.choose(estimate) == "incremental"


def test_cost_model_separates_call_overhead_from_arithmetic():
    """Updates whose time is all per-call overhead: the fit puts it on the calls, so a plan with
    few calls stays cheap while one with many calls is priced out."""
    cost = CostModel(margin=0.85)
    cost.observe("full", 1.0)
    for arithmetic, calls in [(0.1, 10), (0.2, 40), (0.05, 30), (0.3, 20), (0.15, 50), (0.1, 60)] * 3:
        estimate = cost.estimate(total=1.0, recomputed=arithmetic, arithmetic=arithmetic, calls=calls)
        cost.observe("incremental", arithmetic + calls * 0.001, estimate)  # 1 ms per call, arithmetic as planned
    assert cost.call_seconds == pytest.approx(0.001, rel=0.2)
    assert cost.correction == pytest.approx(1.0, rel=0.3)
    assert cost.choose(cost.estimate(1.0, 0.3, 0.3, 5)) == "incremental"
    assert cost.choose(cost.estimate(1.0, 0.3, 0.3, 600)) == "full"


def block_means(a, b, block):
    """Per-block mean |a - b| over pixels and channels."""
    import torch.nn.functional as F

    return F.avg_pool2d((a - b).abs().mean(dim=1, keepdim=True), block, block, ceil_mode=True)[0, 0]


def test_threshold_ignores_small_changes_and_bounds_the_error():
    model = small_vgg()
    program = compile_model(model, (3, 48, 48))
    threshold = 0.05
    engine = VideoEngine(program, threshold=threshold, refresh=0, drift=1.0, cost=eager_cost(), block=4)
    frame = torch.rand(1, 3, 48, 48)
    engine.step(frame)
    noisy = frame + (torch.rand_like(frame) - 0.5) * 0.08  # mean change per block under the threshold
    assert engine.step(noisy).mode == "reuse"
    moved = noisy.clone()
    moved[..., 20:30, 20:30] = 1.0
    result = engine.step(moved)
    assert result.mode == "incremental"
    state_image = engine.state.tensors[program.input_name]
    assert block_means(state_image, moved, 4).max().item() <= threshold  # bounded drift, block by block
    assert torch.equal(state_image[..., 20:28, 20:28], moved[..., 20:28, 20:28])  # the blocks that changed: exact
    assert not engine.state.exact


def test_drift_stays_bounded_however_long_it_accumulates():
    """A slow fade, under the threshold from one frame to the next: the state's image follows it
    block by block whenever the change since its last update adds up past the threshold."""
    model = small_vgg()
    program = compile_model(model, (3, 48, 48))
    threshold = 0.05
    engine = VideoEngine(program, threshold=threshold, refresh=0, drift=1.0, cost=eager_cost(), block=4)
    frame = torch.rand(1, 3, 48, 48) * 0.5
    engine.step(frame)
    modes = []
    for i in range(1, 30):
        faded = frame + 0.01 * i  # 0.01 a frame everywhere: 0.3 in the end, six times the threshold
        result = engine.step(faded)
        modes.append(result.mode)
        state_image = engine.state.tensors[program.input_name]
        assert block_means(state_image, faded, 4).max().item() <= threshold + 1e-6
    assert "incremental" in modes and "reuse" in modes


def test_isolated_noise_waits_until_it_adds_up():
    """A lone block changed by a bit more than the threshold (a flicker) is ignored until it passes
    twice the threshold; the same change next to another changed block is recomputed at once."""
    model = small_vgg()
    threshold = 0.05
    engine = VideoEngine(compile_model(model, (3, 48, 48)), threshold=threshold, refresh=0, drift=1.0,
                         cost=eager_cost(), block=4)  # fmt: skip
    frame = torch.rand(1, 3, 48, 48) * 0.5
    engine.step(frame)
    lone = frame.clone()
    lone[..., 8:12, 8:12] += 1.5 * threshold
    assert engine.step(lone).mode == "reuse"
    lone[..., 8:12, 8:12] += 1.0 * threshold  # 2.5x the threshold since the state's last update
    assert engine.step(lone).mode == "incremental"
    pair = lone.clone()
    pair[..., 28:32, 28:36] += 1.5 * threshold  # two neighbouring blocks
    result = engine.step(pair)
    assert result.mode == "incremental" and result.changed == pytest.approx(2 / 144)


def test_refresh_after_n_approximate_updates():
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 48, 48)), threshold=0.01, refresh=3, cost=eager_cost())
    modes = [engine.step(frame).mode for frame in frames_with_moving_square(9)]
    assert modes == ["full", "incremental", "incremental", "incremental", "full", "incremental", "incremental", "incremental", "full"]


def test_drift_sweeps_the_blocks_over_half_the_threshold():
    """Over ``drift`` of the blocks off by more than half the threshold: they are all recomputed
    (an update when it pays, else a full pass)."""
    model = small_vgg()
    program = compile_model(model, (3, 48, 48))
    engine = VideoEngine(program, threshold=0.1, refresh=0, drift=0.3, cost=eager_cost(), block=4)
    frame = torch.rand(1, 3, 48, 48)
    engine.step(frame)
    dimmer = frame.clone()
    dimmer[..., :, :24] -= 0.07  # under the threshold, over half of it, on half the blocks
    dimmer[..., 40:44, 40:44] = 1.0
    result = engine.step(dimmer)
    assert "drift sweep" in result.reason
    assert torch.equal(engine.state.tensors[program.input_name], dimmer.contiguous(memory_format=torch.channels_last))


def test_tau_approximates_with_less_work():
    model = small_vgg()
    shape = (3, 96, 96)
    program = compile_model(model, shape)
    exact = VideoEngine(program, cost=eager_cost())
    approx = VideoEngine(program, tau=0.3, refresh=0, cost=eager_cost())
    frames = frames_with_moving_square(6, shape, side=30)
    spent = {"exact": 0.0, "approx": 0.0}
    for frame in frames:
        want = exact.step(frame)
        got = approx.step(frame)
        spent["exact"] += want.recomputed
        spent["approx"] += got.recomputed
    assert spent["approx"] < spent["exact"]
    with torch.inference_mode():
        reference = model(frames[-1])
    assert (want.output - reference).abs().max().item() <= 1e-4
    assert (got.output - reference).abs().max().item() > 1e-6  # approximate
    assert (got.output - reference).abs().max().item() < 0.5 * reference.abs().max().item()


def test_block_scores_threshold_isolation_and_drift():
    old = torch.rand(1, 3, 64, 80)
    new = old.clone()
    new[..., 8:16, 8:24] += 0.5  # two neighbouring 8 px blocks, far over the threshold
    new[0, 1, 40, 40] += 0.9  # one channel of one pixel: a lone block with a mean change of 0.9 / 192
    new[..., 56:64, 72:80] += 0.08  # a lone block over the threshold, under twice it: ignored
    new[..., 48:56, 0:8] += 0.11  # a lone block over twice the threshold
    change = changes.detect(new, old, 0.05, block=8)
    assert change.blocks.shape == (8, 10)
    assert {tuple(p) for p in np.argwhere(change.blocks)} == {(1, 1), (1, 2), (6, 0)}
    assert change.fraction == pytest.approx(3 / 80)
    assert change.drift == pytest.approx(4 / 80)  # blocks over half the threshold
    exact = changes.detect(new, old, 0.0, block=8)
    assert int(exact.blocks.sum()) == 5  # exact: every block with any changed pixel
    per_channel = changes.detect(new, old, [0.05, 0.05, 2.0], block=8)  # channel 2 counts for little
    assert per_channel.blocks[1, 1]


def test_pixels_and_tensors_find_the_same_blocks():
    """Frames compared as uint8 pixels (levels) or as tensors (input units): the same blocks."""
    generator = np.random.default_rng(0)
    old = generator.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    new = old.copy()
    new[3:9, 5:20] = generator.integers(0, 256, (6, 15, 3), dtype=np.uint8)
    new[20, 30, 1] ^= 1  # one level in one channel: seen only by exact mode
    as_tensor = lambda a: torch.from_numpy(a).float().permute(2, 0, 1)[None]  # noqa: E731
    for threshold in (0, 24, [10, 24, 30]):
        pixels = changes.detect(new, old, threshold, block=8)
        tensors = changes.detect(as_tensor(new), as_tensor(old), threshold, block=8)
        assert (pixels.blocks == tensors.blocks).all() and pixels.blocks.any()
    assert changes.detect(new, old, 0, block=8).blocks.sum() == changes.detect(new, old, 1, block=8).blocks.sum() + 1


def count_calls(monkeypatch, module, names):
    """Wrap ``module.name`` for each name so calls are counted (work counted, never timed)."""
    counts = dict.fromkeys(names, 0)
    for name in names:
        original = getattr(module, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return counts


def test_high_change_frame_falls_back_before_any_incremental_work(monkeypatch):
    """A frame mostly changed goes to full inference on its block scores alone: no plan, no
    update; a third changed is priced out by the plan, still with no update; a small change updates."""
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 48, 48)), cost=CostModel(adaptive=False))
    plans = count_calls(monkeypatch, masks, ["plan"])
    updates = count_calls(monkeypatch, cells, ["update"])
    frame = torch.rand(1, 3, 48, 48)
    engine.step(frame)
    mostly = frame.clone()
    mostly[..., :, :32] = torch.rand(1, 3, 48, 32)  # two thirds of the frame
    result = engine.step(mostly)
    assert result.mode == "full" and result.reason.startswith("most of the frame changed")
    assert plans == {"plan": 0} and updates == {"update": 0}
    engine._skip = engine._backoff = 0  # look again at the next frame
    third = mostly.clone()
    third[..., 8:36, 8:36] = torch.rand(1, 3, 28, 28)
    result = engine.step(third)
    assert result.mode == "full" and result.reason.startswith("cost:")
    assert plans == {"plan": 1} and updates == {"update": 0}
    assert engine.cost.corrected(result.estimate) >= engine.cost.margin
    engine._skip = engine._backoff = 0
    engine.cost.call_seconds = 0.0  # this tiny net's calls would cost more than its arithmetic
    small = third.clone()
    small[..., 2:5, 2:5] = 0.0
    result = engine.step(small)
    assert result.mode == "incremental" and updates == {"update": 1}
    with torch.inference_mode():
        assert (result.output - model(small)).abs().max().item() <= 1e-4


def test_moving_camera_does_no_incremental_work():
    """A pan: over 24 frames the engine looks for change 5 times and never plans or updates
    (what keeps it at the speed of full inference)."""
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 96, 96)), cost=CostModel(adaptive=False))
    scene = torch.rand(1, 3, 96, 200)
    with pytest.MonkeyPatch.context() as patch:
        counts = count_calls(patch, changes, ["detect"])
        counts.update(count_calls(patch, masks, ["plan"]))
        counts.update(count_calls(patch, cells, ["update"]))
        modes = [engine.step(scene[..., :, 4 * i : 4 * i + 96].contiguous()).mode for i in range(24)]
    assert modes == ["full"] * 24
    assert counts == {"detect": 5, "plan": 0, "update": 0}


def test_change_map_is_the_same_for_channels_last_frames():
    """Decoded frames are channels last; detection reads them in place and finds the same blocks."""
    generator = torch.Generator().manual_seed(0)
    old = torch.rand(1, 37, 53, 3, generator=generator).permute(0, 3, 1, 2)  # (1, 3, H, W), HWC in memory
    new = old.clone()
    new[..., 3:9, 5:20] += torch.rand(1, 3, 6, 15, generator=generator) * 0.3
    new[0, 1, 20, 30] += 0.2
    assert new.permute(0, 2, 3, 1).is_contiguous()
    for threshold in (0.0, 0.05, [0.05, 0.3, 0.05]):
        fast = changes.detect(new, old, threshold, block=5)
        plain = changes.detect(new.contiguous(), old.contiguous(), threshold, block=5)
        assert (fast.blocks == plain.blocks).all() and fast.blocks.any()
        assert (fast.fraction, fast.drift) == (plain.fraction, plain.drift)


def test_looks_get_rarer_when_they_cost_much_of_a_full_pass():
    engine = VideoEngine(compile_model(small_vgg(), (3, 48, 48)), cost=CostModel(adaptive=False))
    assert engine._longest_backoff() == 8  # nothing measured yet
    engine.cost.full_seconds = 1.0
    engine._look_seconds = 0.1  # a look costs a tenth of a full pass: wait 0.1 / 0.02 = 5 -> at least 8
    assert engine._longest_backoff() == 8
    engine._look_seconds = 0.4
    assert engine._longest_backoff() == 20
    engine._look_seconds = 5.0
    assert engine._longest_backoff() == 32


def test_frames_with_pixels_are_compared_on_pixels_and_stay_exact():
    """Given the uint8 pixels a frame was made from, the engine compares those (far less to read);
    exact mode stays exact, and the state's pixels follow the state's image."""
    from sqlml.incremental.inference import Preprocess

    model = small_vgg()
    program = compile_model(model, (3, 48, 48))
    preprocess = Preprocess(mean=(0.4,), std=(0.3,))
    engine = VideoEngine(program, cost=eager_cost(), pixel_threshold=0.0)
    generator = np.random.default_rng(1)
    pixels = generator.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    with pytest.MonkeyPatch.context() as patch:
        scores = count_calls(patch, changes, ["_scores_pixels", "_scores"])
        for i in range(6):
            pixels = pixels.copy()
            pixels[10 + i : 16 + i, 3 * i : 3 * i + 6] = 250
            x = preprocess.tensor(pixels)
            result = engine.step(x, pixels=pixels)
            with torch.inference_mode():
                assert (result.output - model(x)).abs().max().item() <= 1e-4
            assert np.array_equal(engine.state.pixels, pixels)
    assert scores == {"_scores_pixels": 5, "_scores": 0}
    assert result.mode == "incremental"


def test_moving_camera_with_pixels_keeps_no_state_until_it_settles(monkeypatch):
    """Frames with their pixels: once most of a frame changed, later frames are compared with
    the previous frame's pixels only, every 2, 4, ... frames while the camera keeps moving, and
    run full without a kept state (no look, no plan); when the camera stops, one frame keeps
    its state (within BACKOFF frames) and the next ones update."""
    from sqlml.incremental.engine import BACKOFF
    from sqlml.incremental.inference import Preprocess

    model = small_vgg()
    preprocess = Preprocess()
    engine = VideoEngine(compile_model(model, (3, 48, 48)), cost=eager_cost(), pixel_threshold=0.0)
    scene = np.random.default_rng(2).integers(0, 256, (48, 200, 3), dtype=np.uint8)
    plans = count_calls(monkeypatch, masks, ["plan"])
    looks = count_calls(monkeypatch, changes, ["detect"])
    kept = []
    reasons = []
    for i in range(12):
        pixels = np.ascontiguousarray(scene[:, 4 * i : 4 * i + 48])  # a pan
        result = engine.step(preprocess.tensor(pixels), pixels=pixels)
        kept.append(engine.state is not None)
        reasons.append(result.reason)
        with torch.inference_mode():
            assert (result.output - model(preprocess.tensor(pixels))).abs().max().item() <= 1e-4
    assert kept[:2] == [True, False] and not any(kept[2:])
    assert all(r.startswith("still moving") for r in reasons[2:]) and plans == {"plan": 0}
    assert looks["detect"] <= 6  # the look at frame 1, then screens at frames 2, 3, 5, 9 (backing off)
    still = pixels.copy()
    modes = []
    for i in range(BACKOFF + 3):  # the camera stops; a small object moves
        still = still.copy()
        still[20:24, 2 * (i % 20) : 2 * (i % 20) + 4] = 255
        modes.append(engine.step(preprocess.tensor(still), pixels=still).mode)
    assert modes[0] == "full" and "incremental" in modes[1:]
