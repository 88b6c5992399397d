"""PyTorch CPU peer of `npm run bench -- --only inference` (bench/inference.ts).

The quality network, lengstrom/fast-style-transfer's (Johnson et al.): 9x9 conv 3->32, two
stride-2 3x3 convs to 128, five residual blocks, two stride-2 transposed convs, 9x9 conv 32->3,
instance norm after every conv, tanh * 150 + 127.5. Random weights: timing only (the same shapes
and FLOPs as the checkpoints pastiche runs; zero padding of the same size as TensorFlow's SAME).

Prints one JSON line: {"torch": version, "threads": n, "ms": {"WxH": [per-run ms...]}}.

Usage: python3 inference-peer.py THREADS WARMUP RUNS WxH [WxH ...]
"""
import json
import sys
import time

import torch
import torch.nn as nn


def conv(cin, cout, k, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False), nn.InstanceNorm2d(cout, affine=True, eps=1e-3))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = conv(c, c, 3, 1)
        self.b = conv(c, c, 3, 1)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


class Lengstrom(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Sequential(conv(3, 32, 9, 1), nn.ReLU(), conv(32, 64, 3, 2), nn.ReLU(), conv(64, 128, 3, 2), nn.ReLU())
        self.blocks = nn.Sequential(*[Residual(128) for _ in range(5)])
        up = lambda cin, cout: [nn.ConvTranspose2d(cin, cout, 3, 2, padding=1, output_padding=1, bias=False), nn.InstanceNorm2d(cout, affine=True, eps=1e-3), nn.ReLU()]
        self.tail = nn.Sequential(*up(128, 64), *up(64, 32), conv(32, 3, 9, 1))

    def forward(self, x):
        return torch.clamp(torch.tanh(self.tail(self.blocks(self.head(x)))) * 150 + 127.5, 0, 255)


def main():
    threads, warmup, runs = (int(a) for a in sys.argv[1:4])
    sizes = sys.argv[4:]
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = Lengstrom().eval()
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "ms": {}}
    with torch.inference_mode():
        for size in sizes:
            w, h = (int(v) for v in size.split("x"))
            x = torch.rand(1, 3, h, w) * 255
            for _ in range(warmup):
                net(x)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                y = net(x)
                times.append((time.perf_counter() - t0) * 1000)
            assert tuple(y.shape) == (1, 3, h, w), y.shape
            result["ms"][size] = times
    print(json.dumps(result))


if __name__ == "__main__":
    main()
