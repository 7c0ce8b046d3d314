"""Fixtures for incremental inference: small CNNs, generated clips (never real data)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _seeded_single_thread():
    """Seeded, and one intra-op thread: tiny convs on a shared 2-core machine stall with two."""
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_clip(path, frames, fps=10.0, fourcc="FFV1"):
    """Write RGB uint8 frames with OpenCV (FFV1 .avi is lossless: unchanged pixels stay unchanged)."""
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


def static_scene(n=12, h=48, w=64, seed=0, box=8):
    """A fixed-camera clip: a textured background and one square moving across it."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        frame = background.copy()
        y, x = 10 + (i % 3), (3 * i) % (w - box)
        frame[y : y + box, x : x + box] = (250, 40, 40)
        frames.append(frame)
    return frames


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "scene.avi", static_scene())
