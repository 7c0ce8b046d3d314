"""The per-frame engine: exact updates, reuse, the cost model's fallback, drift and refresh."""

import pytest
import torch
import torch.nn as nn

from sqlml.incremental import boxes
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
        looked.append(result.reason == "most of the frame changed")
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


def test_threshold_ignores_small_changes_and_bounds_the_error():
    model = small_vgg()
    program = compile_model(model, (3, 48, 48))
    threshold = 0.05
    engine = VideoEngine(program, threshold=threshold, refresh=0, drift=1.0, cost=eager_cost())
    frame = torch.rand(1, 3, 48, 48)
    engine.step(frame)
    noisy = frame + (torch.rand_like(frame) - 0.5) * 0.08  # below the threshold everywhere
    assert engine.step(noisy).mode == "reuse"
    moved = noisy.clone()
    moved[..., 20:30, 20:30] = 1.0
    result = engine.step(moved)
    assert result.mode == "incremental"
    state_image = engine.state.tensors[program.input_name]
    assert (state_image - moved).abs().max().item() <= threshold  # the state drifts by at most the threshold
    assert torch.equal(state_image[..., 20:30, 20:30], moved[..., 20:30, 20:30])
    assert not engine.state.exact


def test_refresh_after_n_approximate_updates():
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 48, 48)), threshold=0.01, refresh=3, cost=eager_cost())
    modes = [engine.step(frame).mode for frame in frames_with_moving_square(9)]
    assert modes == ["full", "incremental", "incremental", "incremental", "full", "incremental", "incremental", "incremental", "full"]


def test_drift_triggers_a_refresh():
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 48, 48)), threshold=0.1, refresh=0, drift=0.3, cost=eager_cost())
    frame = torch.rand(1, 3, 48, 48)
    engine.step(frame)
    dimmer = frame - 0.07  # under the threshold, over half of it, everywhere
    dimmer[..., 0:4, 0:4] = 1.0
    result = engine.step(dimmer)
    assert result.mode == "full" and "drift" in result.reason


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


def test_change_mask_threshold_and_drift():
    old = torch.rand(1, 3, 64, 80)
    new = old.clone()
    new[..., 3:9, 5:7] += 0.5
    new[1 - 1, 1, 30, 40] += 0.2  # one channel of one cell
    new[..., 50:60, 60:79] += 0.03  # under the threshold, over half of it
    change = boxes.detect(new, old, 0.05)
    mask = torch.from_numpy(change.changed) > 0
    assert mask.shape == (64, 80)
    assert set(map(tuple, mask.nonzero().tolist())) == {(y, x) for y in range(3, 9) for x in range(5, 7)} | {(30, 40)}
    assert change.fraction == pytest.approx(13 / (64 * 80))
    assert change.drift == pytest.approx((13 + 190) / (64 * 80))
    exact = boxes.detect(new, old, 0.0)
    assert int(exact.changed.sum()) == 13 + 190
    per_channel = boxes.detect(new, old, [0.05, 0.3, 0.05]).changed  # channel 1 needs more
    assert not per_channel[30, 40] and per_channel[3, 5]


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
    """A frame mostly changed goes to full inference on the 1/16 sample alone: no change map,
    no boxes, no plan, no update; a third changed is priced out from the sample, still with no
    exact change map or update; a small change runs the update."""
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 48, 48)), cost=CostModel(adaptive=False))
    counts = count_calls(monkeypatch, boxes, ["sample", "detect", "change_boxes", "plan", "update"])
    frame = torch.rand(1, 3, 48, 48)
    engine.step(frame)
    mostly = frame.clone()
    mostly[..., :, :32] = torch.rand(1, 3, 48, 32)  # two thirds of the frame
    result = engine.step(mostly)
    assert result.mode == "full" and result.reason == "most of the frame changed"
    assert counts == {"sample": 1, "detect": 0, "change_boxes": 0, "plan": 0, "update": 0}
    engine._skip = engine._backoff = 0  # look again at the next frame
    third = mostly.clone()
    third[..., 8:36, 8:36] = torch.rand(1, 3, 28, 28)
    result = engine.step(third)
    assert result.mode == "full" and result.reason.startswith("cost:") and "sampled" in result.reason
    assert counts["detect"] == 0 and counts["update"] == 0 and counts["plan"] == 1
    assert engine.cost.corrected(result.estimate) >= engine.cost.margin
    engine._skip = engine._backoff = 0
    engine.cost.call_seconds = 0.0  # this tiny net's calls would cost more than its arithmetic
    small = third.clone()
    small[..., 2:5, 2:5] = 0.0
    result = engine.step(small)
    assert result.mode == "incremental" and counts["detect"] == 1 and counts["update"] == 1
    with torch.inference_mode():
        assert (result.output - model(small)).abs().max().item() <= 1e-4


def test_moving_camera_does_no_incremental_work():
    """A pan: over 24 frames the engine looks for change 5 times, on samples only, and never
    builds a change map, plans or updates (what keeps it at the speed of full inference)."""
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 96, 96)), cost=CostModel(adaptive=False))
    scene = torch.rand(1, 3, 96, 200)
    with pytest.MonkeyPatch.context() as patch:
        counts = count_calls(patch, boxes, ["sample", "detect", "plan", "update"])
        modes = [engine.step(scene[..., :, 4 * i : 4 * i + 96].contiguous()).mode for i in range(24)]
    assert modes == ["full"] * 24
    assert counts == {"sample": 5, "detect": 0, "plan": 0, "update": 0}


def test_change_map_is_the_same_for_channels_last_frames():
    """Decoded frames are channels last; detection reads them in place and finds the same cells."""
    generator = torch.Generator().manual_seed(0)
    old = torch.rand(1, 37, 53, 3, generator=generator).permute(0, 3, 1, 2)  # (1, 3, H, W), HWC in memory
    new = old.clone()
    new[..., 3:9, 5:20] += torch.rand(1, 3, 6, 15, generator=generator) * 0.3
    new[0, 1, 20, 30] += 0.2
    assert new.permute(0, 2, 3, 1).is_contiguous()
    for threshold in (0.0, 0.05, [0.05, 0.3, 0.05]):
        fast = boxes.detect(new, old, threshold)
        plain = boxes.detect(new.contiguous(), old.contiguous(), threshold)
        assert (fast.changed == plain.changed).all() and fast.changed.any()
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


def test_a_priced_out_look_makes_later_looks_with_as_much_change_cheap(monkeypatch):
    """Once the exact plan priced an update out, a later frame whose sample shows at least as much
    change falls back without an exact change map; less change gets the exact look again."""
    model = small_vgg()
    engine = VideoEngine(compile_model(model, (3, 48, 48)), cost=CostModel(adaptive=False, call_seconds=0.0))
    counts = count_calls(monkeypatch, boxes, ["detect", "update"])
    frame = torch.rand(1, 3, 48, 48)
    engine.step(frame)
    engine._updated = 1.0  # as if updates had been paying: no sampled pricing, straight to the exact plan
    big = frame.clone()
    big[..., 5:45:2, 5:45:2] = torch.rand(1, 3, 20, 20)  # odd rows and columns: the sample misses them
    big[..., 0, 0] = 2.0  # one sampled pixel
    first = engine.step(big)
    assert first.mode == "full" and first.reason.startswith("cost:") and counts["detect"] == 1
    assert engine._priced_out_at == pytest.approx(1 / 144)  # one of the 12 x 12 samples changed
    engine._skip = engine._backoff = 0
    again = big.clone()
    again[..., 5:45:2, 5:45:2] += 0.5
    again[..., 0, 0] = -1.0
    result = engine.step(again)
    assert result.mode == "full" and "priced out" in result.reason and counts["detect"] == 1
    engine._skip = engine._backoff = 0
    small = again.clone()
    small[..., 1, 47] = 3.0  # between the samples: the sample sees nothing
    result = engine.step(small)
    assert result.mode == "incremental" and counts == {"detect": 2, "update": 1}
    assert engine._priced_out_at == float("inf")
