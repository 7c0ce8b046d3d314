"""Reference CNNs for incremental inference: MTCNN's PNet and a VGG-style classifier.

``PNet`` has the layer names of the real MTCNN weights (facenet-pytorch's ``pnet.pt``
state dict: conv1, prelu1, ..., conv4_2), so ``load_state_dict`` takes them as they
are; it is fully convolutional (a face-probability map and box offsets per 12x12
window), with a ``ceil_mode`` max pool. ``vgg_style`` is VGG16's layout (3x3 convs,
2x2 pools) at a chosen width, ending in global average pooling and one linear
layer: the kind of network incremental inference helps most.

Both factories follow ``register_architecture``'s signature
``factory(input_shape, n_outputs, options)``.
"""

from __future__ import annotations

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _torch():
    import torch.nn as nn

    return nn


class _Lazy:
    """Module classes built on first use, so importing this file does not import torch."""

    _cache: dict = {}

    @classmethod
    def pnet_class(cls):
        if "pnet" not in cls._cache:
            nn = _torch()

            class PNet(nn.Module):
                """MTCNN proposal net: returns (face probabilities (N,2,h,w), box offsets (N,4,h,w))."""

                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
                    self.prelu1 = nn.PReLU(10)
                    self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
                    self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
                    self.prelu2 = nn.PReLU(16)
                    self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
                    self.prelu3 = nn.PReLU(32)
                    self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
                    self.softmax4_1 = nn.Softmax(dim=1)
                    self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

                def forward(self, x):
                    x = self.prelu3(self.conv3(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x)))))))
                    return self.softmax4_1(self.conv4_1(x)), self.conv4_2(x)

            cls._cache["pnet"] = PNet
        return cls._cache["pnet"]


def pnet(input_shape=None, n_outputs=None, options=None):
    """MTCNN's PNet (random weights; load ``pnet.pt`` with ``load_state_dict``)."""
    return _Lazy.pnet_class()().eval()


def vgg_style(input_shape=(3, 224, 224), n_outputs=10, options=None):
    """VGG16's layout scaled by ``options['width']`` (default 0.25), GAP + linear head.

    ``options['layers']`` replaces the layout (ints: 3x3 conv widths, "M": 2x2 max pool);
    ``options['batch_norm']`` adds BatchNorm after each conv.
    """
    nn = _torch()
    options = dict(options or {})
    width = float(options.get("width", 0.25))
    layout = options.get("layers") or [v if v == "M" else max(4, int(v * width)) for v in VGG16]
    channels = int(input_shape[0]) if input_shape else 3
    layers = []
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(channels, int(item), 3, padding=1))
        if options.get("batch_norm"):
            layers.append(nn.BatchNorm2d(int(item)))
        layers.append(nn.ReLU(inplace=True))
        channels = int(item)
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, int(n_outputs or 10))]
    return nn.Sequential(*layers, *head).eval()
