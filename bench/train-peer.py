"""PyTorch CPU peer of `npm run bench -- --only train` (bench/train.ts).

The same training step as pastiche's: pytorch/examples fast_neural_style's TransformerNet (or the
compact variant), VGG19 with the weights pastiche loaded, content relu4_2, style relu1_1..relu5_1,
the same loss formulas and weights, Adam. Inputs come from one safetensors file written by the
bench: `vgg.block{b}_conv{i}.weight|bias`, `<architecture>.<param>` starting parameters,
`content` [B, 3, S, S] (the first photo batch, RGB 0..255) and `style` [1, 3, H, W].

Prints one JSON line: per-step milliseconds, the loss terms of the first step (which must match
pastiche's first step: same parameters, photos and style), peak RSS.

Usage: python3 train-peer.py INPUTS ARCHITECTURE THREADS WARMUP STEPS [vgg16]
  vgg16: time pytorch/examples' own loss network instead (VGG16, content relu2_2, style
  relu1_2, relu2_2, relu3_3, relu4_3) with random weights: timing only, for the figure in DESIGN.md.
"""
import json
import re
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]
VGG_BLOCKS = {16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}
VGG_WIDTHS = [64, 128, 256, 512, 512]
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT, LEARNING_RATE = 7.5, 100.0, 200.0, 1e-3
ARCHITECTURES = {
    "pytorch-examples": {"widths": (32, 64, 128), "blocks": 5, "output": "linear"},
    "compact": {"widths": (16, 32, 64), "blocks": 3, "output": "tanh"},
}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    base = 8 + length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        data = torch.frombuffer(bytearray(raw[base + start : base + end]), dtype=torch.float32)
        tensors[name] = data.reshape(entry["shape"])
    return tensors


# pytorch/examples fast_neural_style/neural_style/transformer_net.py, with configurable widths and blocks.
class ConvLayer(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x):
        return x + self.in2(self.conv2(self.relu(self.in1(self.conv1(x)))))


class UpsampleConvLayer(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, upsample):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    def __init__(self, widths, blocks, output):
        super().__init__()
        w1, w2, w3 = widths
        self.output = output
        self.conv1 = ConvLayer(3, w1, 9, 1)
        self.in1 = nn.InstanceNorm2d(w1, affine=True)
        self.conv2 = ConvLayer(w1, w2, 3, 2)
        self.in2 = nn.InstanceNorm2d(w2, affine=True)
        self.conv3 = ConvLayer(w2, w3, 3, 2)
        self.in3 = nn.InstanceNorm2d(w3, affine=True)
        self.blocks = blocks
        for b in range(blocks):
            setattr(self, f"res{b + 1}", ResidualBlock(w3))
        self.deconv1 = UpsampleConvLayer(w3, w2, 3, 1, 2)
        self.in4 = nn.InstanceNorm2d(w2, affine=True)
        self.deconv2 = UpsampleConvLayer(w2, w1, 3, 1, 2)
        self.in5 = nn.InstanceNorm2d(w1, affine=True)
        self.deconv3 = ConvLayer(w1, 3, 9, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        for b in range(self.blocks):
            y = getattr(self, f"res{b + 1}")(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        y = self.deconv3(y)
        return torch.tanh(y) * 150 + 127.5 if self.output == "tanh" else y


def vgg_layer_names(depth):
    names = []
    for b, count in enumerate(VGG_BLOCKS[depth]):
        for i in range(1, count + 1):
            names += [f"conv{b + 1}_{i}", f"relu{b + 1}_{i}"]
        names.append(f"pool{b + 1}")
    return names


def vgg_features(x, params, depth, taps):
    """VGG on RGB 0..255 with caffe preprocessing (BGR minus the ImageNet mean), up to the deepest tap."""
    order = vgg_layer_names(depth)
    deepest = max(order.index(t) for t in taps)
    mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    x = x[:, [2, 1, 0]] - mean
    out = {}
    for name in order[: deepest + 1]:
        kind, b, i = re.match(r"^(conv|relu|pool)(\d)(?:_(\d))?$", name).groups()
        if kind == "conv":
            x = F.conv2d(x, params[f"block{b}_conv{i}.weight"], params[f"block{b}_conv{i}.bias"], padding=1)
        elif kind == "relu":
            x = F.relu(x, inplace=True)  # as torchvision's VGG, which pytorch/examples uses
        else:
            x = F.max_pool2d(x, 2)
        if name in taps:
            out[name] = x
    return out


def gram_matrix(y):
    b, c, h, w = y.size()
    features = y.view(b, c, h * w)
    return features.bmm(features.transpose(1, 2)) / (c * h * w)


def random_vgg16():
    """VGG16 weights for timing only (He-scaled so activations stay finite)."""
    generator = torch.Generator().manual_seed(0)
    params, in_channels = {}, 3
    for b, count in enumerate(VGG_BLOCKS[16]):
        for i in range(1, count + 1):
            out = VGG_WIDTHS[b]
            std = (2.0 / (in_channels * 9)) ** 0.5
            params[f"block{b + 1}_conv{i}.weight"] = torch.randn(out, in_channels, 3, 3, generator=generator) * std
            params[f"block{b + 1}_conv{i}.bias"] = torch.zeros(out)
            in_channels = out
    return params


def main():
    inputs, architecture, threads, warmup, steps = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    vgg16 = len(sys.argv) > 6 and sys.argv[6] == "vgg16"
    torch.set_num_threads(threads)
    tensors = read_safetensors(inputs)
    config = ARCHITECTURES[architecture]
    net = TransformerNet(config["widths"], config["blocks"], config["output"])
    prefix = f"{architecture}."
    net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    optimizer = torch.optim.Adam(net.parameters(), LEARNING_RATE)
    x = tensors["content"]
    if vgg16:
        depth, params = 16, random_vgg16()
        content_layer, style_layers = "relu2_2", ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    else:
        depth = 19
        params = {k[len("vgg.") :]: v for k, v in tensors.items() if k.startswith("vgg.")}
        content_layer, style_layers = "relu4_2", ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    with torch.no_grad():
        style_grams = {l: gram_matrix(f) for l, f in vgg_features(tensors["style"], params, depth, style_layers).items()}

    times, first = [], None
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        optimizer.zero_grad()
        y = net(x)
        features_y = vgg_features(y, params, depth, [content_layer] + style_layers)
        with torch.no_grad():
            features_x = vgg_features(x, params, depth, [content_layer])
        content = CONTENT_WEIGHT * F.mse_loss(features_y[content_layer], features_x[content_layer])
        style = 0.0
        for layer in style_layers:
            gram = gram_matrix(features_y[layer])
            style = style + F.mse_loss(gram, style_grams[layer].expand_as(gram))
        style = STYLE_WEIGHT * style
        tv = TV_WEIGHT * (((y[:, :, :, 1:] - y[:, :, :, :-1]) ** 2).mean() + ((y[:, :, 1:, :] - y[:, :, :-1, :]) ** 2).mean())
        loss = content + style + tv
        loss.backward()
        optimizer.step()
        times.append((time.perf_counter() - t0) * 1000)
        if step == 0:
            first = {"loss": loss.item(), "terms": {"content": content.item(), "style": style.item(), "tv": tv.item()}}

    with open("/proc/self/status") as f:
        peak = int(re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M).group(1)) / 1024
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "vgg": f"VGG{depth}",
        "warmupMs": times[:warmup], "stepMs": times[warmup:],
        "firstLoss": first["loss"], "firstTerms": first["terms"], "maxRssMiB": peak,
    }))


if __name__ == "__main__":
    main()
