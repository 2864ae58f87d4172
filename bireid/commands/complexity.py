"""``bireid complexity``: FLOPs / BOPs / OPs / storage of a model as built, layer by layer."""

from __future__ import annotations

import argparse
import json
import re

HELP = "count FLOPs, BOPs, OPs and storage of a (binary) model, per layer and in total"
DESCRIPTION = (HELP + ". Defaults: the default re-ID model (resnet18, method bireid, 256x128 input, last stride 1, "
               "bnneck head, 751 identities). The paper's ImageNet-style figures: --input 224x224 --head fc1000 "
               "--num-classes 1000 --last-stride 2 (12.51x for bireid with --downsample binary). Conventions: "
               "MACs = Cin*Cout*k^2*Hout*Wout; OPs = FLOPs + BOPs/64; BN, PReLU and pooling not counted; storage "
               "32 bits per real and 1 bit per binary parameter, BN/PReLU/scale parameters excluded unless "
               "--include-bn.")


def _parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise argparse.ArgumentTypeError(f"input size must look like HxW (e.g. 256x128), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..methods import list_methods
    from ..modeling import list_backbones

    p.add_argument("--arch", default="resnet18", choices=list_backbones(),
                   help="backbone architecture (default: resnet18)")
    p.add_argument("--method", default="bireid", choices=list_methods(), help="binarization method (default: bireid)")
    p.add_argument("--input", type=_parse_size, default=(256, 128), metavar="HxW",
                   help="input image size (default: 256x128)")
    p.add_argument("--head", default="bnneck", choices=("bnneck", "fc2", "fc1000"),
                   help="bnneck / fc2: the re-ID model's head (fc2 = the paper's FC-512, FC-classes); fc1000: "
                        "global pool + one real FC, ImageNet style (default: bnneck)")
    p.add_argument("--num-classes", type=int, default=751, help="classifier outputs (default: 751)")
    p.add_argument("--downsample", choices=("binary", "real"), default=None,
                   help="1x1 downsample convs binary (BiRe-ID) or avg-pool + real (Bi-Real) (default: the "
                        "method's: real for bireal, binary otherwise)")
    p.add_argument("--last-stride", type=int, choices=(1, 2), default=1, help="last stage stride (default: 1)")
    p.add_argument("--width", type=int, default=64, help="channels of the first stage (default: 64)")
    p.add_argument("--include-bn", action="store_true",
                   help="count BatchNorm, PReLU, scale and threshold parameters in storage (32 bits each)")
    p.add_argument("--json", action="store_true", help="print the per-layer rows and totals as JSON")


def run(args: argparse.Namespace) -> int:
    from ..complexity import build_for_accounting, count_complexity
    from ..errors import UserError

    if args.num_classes <= 0:
        raise UserError(f"--num-classes must be positive, got {args.num_classes}")
    if args.width <= 0:
        raise UserError(f"--width must be positive, got {args.width}")
    h, w = args.input
    model = build_for_accounting(args.arch, args.method, head=args.head, num_classes=args.num_classes,
                                 last_stride=args.last_stride, downsample=args.downsample, width=args.width)
    rep = count_complexity(model, (h, w), include_bn=args.include_bn)
    if args.json:
        d = rep.to_dict()
        d["model"] = {"arch": args.arch, "method": args.method, "head": args.head, "num_classes": args.num_classes,
                      "downsample": args.downsample, "last_stride": args.last_stride, "width": args.width}
        print(json.dumps(d, indent=1))
    else:
        print(f"{args.arch} / {args.method} / head {args.head} ({args.num_classes} classes) / last stride "
              f"{args.last_stride} / downsample {args.downsample or 'method default'}")
        print(rep.format_table())
    return 0
